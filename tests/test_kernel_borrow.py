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


def _bad_borrows(source: str, where: str = "") -> tuple[list[str], int]:
    """The ``borrow(...)`` calls of ``source`` whose array is not an argument of their function
    (or a field of one), and the number of borrow calls seen."""
    bad, calls = [], _borrowed_names(ast.parse(source))
    for fn, call in calls:
        (arg,) = call.args
        if isinstance(arg, ast.Attribute):  # borrow(argument.field): a field of an argument
            arg = arg.value
        if getattr(arg, "id", None) not in {a.arg for a in fn.args.args}:
            bad.append(f"{where}:{call.lineno} {fn.name} borrows {ast.unparse(call)}")
    return bad, len(calls)


def test_kernels_borrow_only_their_arguments():
    bad, n_calls = [], 0
    for path in KERNELS:
        found, n = _bad_borrows(path.read_text(), path.name)
        bad += found
        n_calls += n
    assert n_calls > 10  # the check sees the kernels' borrows
    assert not bad, "borrowed arrays that are not arguments:\n" + "\n".join(bad)


def test_the_check_finds_a_borrowed_local():
    source = "def f(a_, t):\n    b_ = np.empty(3)\n    x = borrow(a_), borrow(b_), borrow(t.x)\n"
    bad, n_calls = _bad_borrows(source, "f.py")
    assert n_calls == 3
    assert bad == ["f.py:3 f borrows borrow(b_)"]
