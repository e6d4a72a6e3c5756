"""Array views for Numba kernels that Numba's own methods make expensive.

``a.reshape(...)`` and ``a.ravel()`` inside a Numba function call a C helper that checks
whether a view is possible (~20 ns): negligible once, but a small agent's step is ~2 us and
its element-wise passes would pay it several times.

Every view Numba takes of an array also counts a reference to the array's owner: an atomic
increment, and a decrement when the view dies (~20 cycles each, more when two threads count
on one owner, as they do on the population's parameters). A small agent's step takes dozens
of views; :func:`borrow` gives an array without an owner, whose views count nothing.
"""

from __future__ import annotations

from numba import types
from numba.core import cgutils
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array


@intrinsic
def flat(typingctx, arr):
    """1-D view of a C-contiguous array (no copy, no C call): ``flat(a)[k] == a.ravel()[k]``."""
    if not isinstance(arr, types.Array) or arr.layout != "C":
        return None
    result = arr.copy(ndim=1, layout="C")

    def codegen(context, builder, signature, args):
        src_type, (src,) = signature.args[0], args
        src_ary = make_array(src_type)(context, builder, src)
        size = context.get_constant(types.intp, 1)
        for extent in cgutils.unpack_tuple(builder, src_ary.shape):
            size = builder.mul(size, extent)
        dst = make_array(signature.return_type)(context, builder)
        populate_array(
            dst,
            data=src_ary.data,
            shape=[size],
            strides=[src_ary.itemsize],
            itemsize=src_ary.itemsize,
            meminfo=src_ary.meminfo,
            parent=src_ary.parent,
        )
        return impl_ret_borrowed(context, builder, signature.return_type, dst._getvalue())

    return result(arr), codegen


@intrinsic
def borrow(typingctx, arr):
    """The same array (data, shape, strides) without an owner: views of it skip reference
    counting. The caller must keep the original array alive while the borrowed one is used
    (pass the original as an argument of the function that borrows it: a caller holds its
    arguments until the call returns)."""
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, signature, args):
        src_type, (src,) = signature.args[0], args
        src_ary = make_array(src_type)(context, builder, src)
        dst = make_array(signature.return_type)(context, builder)
        populate_array(
            dst,
            data=src_ary.data,
            shape=cgutils.unpack_tuple(builder, src_ary.shape),
            strides=cgutils.unpack_tuple(builder, src_ary.strides),
            itemsize=src_ary.itemsize,
            meminfo=None,
            parent=None,
        )
        return dst._getvalue()

    return arr(arr), codegen


@intrinsic
def prefetch(typingctx, arr, start, count):
    """Ask the CPU to bring elements ``start .. start + count`` of the flat array ``arr`` (any
    layout: offsets from its first element) into its caches, one hint per 64-byte line. A hint
    only: no fault, no effect on any result. For the next agent's inputs and parameters, fetched
    from memory while the current agent computes."""
    if not isinstance(arr, types.Array) or not isinstance(start, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        from llvmlite import ir

        ary = make_array(signature.args[0])(context, builder, args[0])
        i64, i32 = ir.IntType(64), ir.IntType(32)
        start_ = context.cast(builder, args[1], signature.args[1], types.int64)
        count_ = context.cast(builder, args[2], signature.args[2], types.int64)
        base = builder.gep(ary.data, [start_])
        first = builder.ptrtoint(base, i64)
        item = context.get_abi_sizeof(context.get_data_type(signature.args[0].dtype))
        end = builder.add(first, builder.mul(count_, ir.Constant(i64, item)))
        i8p = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        with cgutils.for_range_slice(builder, first, end, ir.Constant(i64, 64)) as (addr, _):
            ptr = builder.inttoptr(addr, i8p)
            # read, locality 3 (keep in every cache level), data cache
            builder.call(fn, [ptr, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.void(arr, start, count), codegen
