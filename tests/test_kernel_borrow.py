"""Every array a kernel borrows is one of its own arguments.

:func:`simulator.kernels.arrays.borrow` gives an array without an owner: nothing keeps its
memory alive but the original. An argument is held by the caller until the call returns; a
local array is not: Numba frees it after its last use, which is the ``borrow`` itself, and the
borrowed view then reads and writes freed memory (a sweep that borrowed its local scratch
corrupted the heap of a later run: ``malloc(): invalid size``). This checks the rule on the
source of every kernel module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import simulator.kernels as kernels

KERNELS = sorted(Path(kernels.__file__).parent.glob("*.py"))


def _borrowed_names(tree: ast.AST) -> list[tuple[ast.FunctionDef, ast.Call]]:
    """(function, call) for every ``borrow(...)`` call, with its innermost enclosing def."""
    found = []

    def visit(node: ast.AST, fn: ast.FunctionDef | None) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child if isinstance(child, ast.FunctionDef) else fn
            is_call = isinstance(child, ast.Call) and isinstance(child.func, ast.Name)
            if is_call and child.func.id == "borrow" and fn is not None:
                found.append((fn, child))
            visit(child, inner)

    visit(tree, None)
    return found


def test_kernels_borrow_only_their_arguments():
    bad, n_calls = [], 0
    for path in KERNELS:
        for fn, call in _borrowed_names(ast.parse(path.read_text())):
            n_calls += 1
            params = {a.arg for a in fn.args.args}
            (arg,) = call.args
            if isinstance(arg, ast.Attribute):  # borrow(argument.field): a field of an argument
                arg = arg.value
            if getattr(arg, "id", None) not in params:
                bad.append(f"{path.name}:{call.lineno} {fn.name} borrows {ast.unparse(call)}")
    assert n_calls > 10  # the check sees the kernels' borrows
    assert not bad, "borrowed arrays that are not arguments:\n" + "\n".join(bad)


def test_the_check_finds_a_borrowed_local():
    source = "def f(a_):\n    b_ = np.empty(3)\n    a, b = borrow(a_), borrow(b_)\n"
    calls = _borrowed_names(ast.parse(source))
    names = [ast.unparse(c.args[0]) for _, c in calls]
    assert names == ["a_", "b_"]
    fn = calls[0][0]
    assert [n for n in names if n not in {a.arg for a in fn.args.args}] == ["b_"]
