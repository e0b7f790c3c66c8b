"""Row-batched sweeps split over every device JAX sees.

The engine's sample sweeps (checking a function at many points, drawing many random networks)
are plain jitted array programs whose rows are independent.  :func:`map_rows` runs such a
program with its rows split over ``jax.devices()``:

    out = map_rows(f, X, Y)                  # f(X, Y) row by row, sharded over all devices
    out, info = map_rows(f, X, return_info=True)
    info.devices, info.rows_per_device       # how the work was actually split

How it works: a one-dimensional :class:`jax.sharding.Mesh` over the devices, axis name
``"rows"``; every argument and every output is placed with
``NamedSharding(mesh, PartitionSpec("rows"))``, so device *k* of *D* holds the *k*-th contiguous
slice of the rows, and ``jax.shard_map`` runs ``f`` on each device's own slice, in blocks of a
fixed number of rows (``lax.map``).  The rows are padded up to a multiple of ``block * D`` by
repeating the last row (not with zeros: a zero row can sit outside the function's domain,
``log(0)``, and trip ``jax_debug_nans``), and the padding is trimmed from the outputs.

Why blocks: XLA chooses the code for a reduction by the shape it reduces, so on CPU
``jnp.sum(x**2, -1)`` over 25 rows and over 100 rows can differ in the last bit of some rows.
The block size depends on the number of rows alone (:func:`block_rows`), never on *D*, so every
row goes through the same compiled code on 1 device or on *D*: the sweep is bit-identical to
the single-device run whenever ``f`` is row-wise (row *i* of every output depends only on row
*i* of the inputs).  ``f`` must not mix rows: each block sees only its own.

Several hosts: start every process with ``jax.distributed.initialize(...)`` and call
:func:`map_rows` with the same arguments on every process; ``jax.devices()`` then lists the
devices of all hosts, each process places only the rows its own devices hold, and the outputs
are gathered so that every process returns the full result.
"""

from __future__ import annotations

import dataclasses
import inspect
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = [
    "AXIS",
    "DEFAULT_BLOCK",
    "MIN_BLOCKS",
    "SweepInfo",
    "block_rows",
    "device_count",
    "map_rows",
    "row_mesh",
    "row_sharding",
]

#: Name of the mesh axis the rows are split along.
AXIS = "rows"


def device_count() -> int:
    """How many devices a sweep is split over by default: ``len(jax.devices())``.

    With ``jax.distributed`` this counts the devices of every host, not only this one's.
    """
    return len(jax.devices())


def row_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A one-dimensional mesh, axis :data:`AXIS`, over ``devices`` (default: all of them)."""
    devs = list(jax.devices() if devices is None else devices)
    if not devs:
        raise ValueError("devices: expected at least one jax.Device, got an empty sequence")
    for d in devs:
        if not isinstance(d, jax.Device):
            raise TypeError(f"devices: expected jax.Device objects, got {type(d).__name__} ({d!r})")
    if len({d.id for d in devs}) != len(devs):
        raise ValueError(f"devices: each device may appear once, got ids {[d.id for d in devs]}")
    return Mesh(np.array(devs, dtype=object), (AXIS,))


def row_sharding(mesh: Mesh) -> NamedSharding:
    """The sharding that splits an array's leading axis over ``mesh``'s :data:`AXIS`."""
    return NamedSharding(mesh, PartitionSpec(AXIS))


@dataclasses.dataclass(frozen=True)
class SweepInfo:
    """How one :func:`map_rows` call was split, read back from where the output shards lie.

    ``devices`` counts the devices that computed at least one of the caller's rows, and
    ``rows_per_device`` how many each computed (padding not counted); ``rows`` is the caller's
    row count, ``padded_rows`` that count rounded up to a multiple of ``block`` times the mesh
    size, ``block`` the rows per call of ``f`` (``None``: one call per device).
    """

    rows: int
    padded_rows: int
    block: int | None
    devices: int
    device_ids: tuple[int, ...]
    rows_per_device: tuple[int, ...]
    platform: str
    processes: int

    def record(self) -> dict[str, Any]:
        """Plain-JSON form, for a report's verification record."""
        return {
            "rows": self.rows,
            "padded_rows": self.padded_rows,
            "block": self.block,
            "devices": self.devices,
            "device_ids": list(self.device_ids),
            "rows_per_device": list(self.rows_per_device),
            "platform": self.platform,
            "processes": self.processes,
        }


#: Rows each device hands to ``f`` at a time (see :func:`map_rows`): small enough that
#: padding to a multiple of ``block * devices`` wastes little, big enough that the loop over
#: blocks costs little next to the work in a block.
DEFAULT_BLOCK = 256

#: A sweep of n rows is cut into blocks of at most ceil(n / MIN_BLOCKS) rows, so that a small
#: sweep still spreads over up to this many devices instead of landing whole on the first.
MIN_BLOCKS = 16

# One jitted program per (function, devices, block, number of arguments), and the checked
# output shapes: jax.jit's caches are keyed on the wrapper object, so a fresh wrapper per call
# would trace and compile again.
_JITTED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _program(f_ref: Callable[[], Callable | None], mesh: Mesh, block: int | None, n_args: int) -> Callable:
    """``jit(shard_map(local))``: each device runs ``f`` on its own rows, ``block`` at a time.

    ``f_ref()`` returns ``f``: the program holds ``f`` weakly, or the cache entry keyed on ``f``
    would keep ``f`` (and its compiled program) alive for ever.
    """
    spec = PartitionSpec(AXIS)

    def local(*xs):
        f = f_ref()
        assert f is not None, "traced only while the caller of map_rows holds f"
        if block is None:
            return f(*xs)
        k = xs[0].shape[0] // block
        chunks = tuple(x.reshape(k, block, *x.shape[1:]) for x in xs)
        out = jax.lax.map(lambda c: f(*c), chunks)
        return jax.tree_util.tree_map(lambda y: y.reshape(k * block, *y.shape[2:]), out)

    sharded = jax.shard_map(local, mesh=mesh, in_specs=(spec,) * n_args, out_specs=spec, check_vma=False)
    return jax.jit(sharded)


def _cache(f: Callable) -> tuple[dict, Callable[[], Callable | None]]:
    """The cache entry of ``f`` and a weak handle on ``f`` (both fresh for a builtin)."""
    # A bound method is a fresh object at every attribute access (``obj.run``): key it on its
    # instance, so ``map_rows(obj.run, ...)`` traces and compiles once per instance.
    owner = f.__self__ if inspect.ismethod(f) else f
    try:
        with _LOCK:
            per_f = _JITTED.setdefault(owner, {})
        f_ref = weakref.WeakMethod(f) if inspect.ismethod(f) else weakref.ref(f)
    except TypeError:  # not weak-referenceable: no cache, jax.jit still traces once per call
        return {}, lambda: f
    if inspect.ismethod(f):
        per_f = per_f.setdefault(f.__func__, {})
    return per_f, f_ref


def _out_shapes(f: Callable, per_f: dict, avals: tuple) -> Any:
    """``jax.eval_shape`` of ``f`` on the block it will see, cached per input shapes."""
    key = ("eval_shape", avals)
    if key not in per_f:
        try:
            per_f[key] = jax.eval_shape(f, *avals)
        except Exception as e:
            raise TypeError(
                f"f: expected a JAX-traceable function of {len(avals)} array(s) of shapes "
                f"{[a.shape for a in avals]}; tracing it raised "
                f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            ) from e
    return per_f[key]


def _jitted(per_f: dict, f_ref, mesh: Mesh, block: int | None, n_args: int) -> Callable:
    key = ("program", tuple(d.id for d in mesh.devices.flat), block, n_args)
    fn = per_f.get(key)
    if fn is None:
        fn = per_f[key] = _program(f_ref, mesh, block, n_args)
    return fn


def block_rows(n: int, block: int = DEFAULT_BLOCK) -> int:
    """Rows per call of ``f`` for a sweep of ``n`` rows: a function of ``n`` and ``block`` only.

    Never of the device count: that is what makes a sweep bit-identical on 1 or D devices.
    """
    return max(1, min(block, -(-n // MIN_BLOCKS)))


def _check_arrays(arrays: Sequence[Any]) -> tuple[list[Any], int]:
    if not arrays:
        raise TypeError("map_rows: expected at least one array argument after f")
    out: list[Any] = []
    n: int | None = None
    for i, a in enumerate(arrays):
        if not isinstance(a, jax.Array):
            a = np.asarray(a)
            if a.dtype == object:
                raise TypeError(f"arrays[{i}]: expected a numeric array, got dtype object")
        if a.ndim == 0:
            raise ValueError(
                f"arrays[{i}]: expected an array with a leading row axis, got a scalar "
                f"(pass constants by closing over them in f)"
            )
        if n is None:
            n = a.shape[0]
        elif a.shape[0] != n:
            raise ValueError(f"arrays[{i}]: expected {n} rows like arrays[0], got shape {tuple(a.shape)}")
        out.append(a)
    assert n is not None  # arrays is not empty
    if n == 0:
        raise ValueError("arrays: expected at least one row, got 0")
    return out, n


def _pad_rows(a, pad: int):
    """Append ``pad`` copies of the last row (see the module docstring for why not zeros)."""
    if pad == 0:
        return a
    if isinstance(a, jax.Array):
        return jnp.concatenate([a, jnp.repeat(a[-1:], pad, axis=0)], axis=0)
    return np.concatenate([a, np.repeat(a[-1:], pad, axis=0)], axis=0)


def _place(a, sharding: NamedSharding):
    if isinstance(a, jax.Array):
        return jax.device_put(a, sharding)
    # Each process builds only the shards its own devices hold: works with jax.distributed,
    # where the global array spans devices this process cannot address.
    return jax.make_array_from_callback(a.shape, sharding, lambda idx: a[idx])


def _info(leaf: jax.Array, rows: int, padded: int, block: int | None) -> SweepInfo:
    """Read where the output's rows actually lie: the shards' own index ranges."""
    if leaf.is_fully_addressable:
        spans = [(s.device, s.index[0]) for s in leaf.addressable_shards]
    else:  # several processes: the sharding knows the other hosts' shards too
        spans = [(d, idx[0]) for d, idx in leaf.sharding.devices_indices_map(leaf.shape).items()]
    real = {}
    for device, sl in spans:
        start, stop, _ = sl.indices(padded)
        real[device.id] = max(0, min(stop, rows) - start)  # padding rows do not count
    used = sorted((d, r) for d, r in real.items() if r > 0)
    return SweepInfo(
        rows=rows,
        padded_rows=padded,
        block=block,
        devices=len(used),
        device_ids=tuple(d for d, _ in used),
        rows_per_device=tuple(r for _, r in used),
        platform=spans[0][0].platform,
        processes=jax.process_count(),
    )


def map_rows(
    f: Callable[..., Any],
    *arrays: Any,
    devices: Sequence[jax.Device] | None = None,
    block: int | None = DEFAULT_BLOCK,
    return_info: bool = False,
) -> Any:
    """Run the row-wise ``f(*arrays)`` jitted, its rows split over ``devices``.

    Parameters
    ----------
    f:
        A JAX-traceable function of ``len(arrays)`` arrays that share a leading row axis; it
        returns an array or a pytree of arrays, each with the same leading axis.  Row *i* of
        each output may depend only on row *i* of the inputs (``jax.vmap`` of a per-row
        function is the typical ``f``).  Constants are captured by closure.
    arrays:
        NumPy or JAX arrays, at least one dimension each, the same number ``n`` of rows.
    devices:
        The devices to split over; default ``jax.devices()`` (all hosts' devices under
        ``jax.distributed``).  ``jax.devices()[:1]`` gives the single-device run.
    block:
        Each device calls ``f`` on blocks of exactly :func:`block_rows` ``(n, block)`` rows
        (at most ``block``, and small enough to make ``MIN_BLOCKS`` blocks), one after the
        other (``lax.map``).  Why: XLA picks the code for a reduction by the shape it reduces
        (on CPU, ``sum(x**2, -1)`` over 25 rows and over 100 rows round differently in the
        last bit), so results are bit-identical across device counts only when every device
        runs ``f`` on blocks of one shape.  The block depends on ``n`` alone, never on the
        device count.  ``None``: one block per device, the fastest on accelerators, identical
        across device counts only for row-wise ``f`` without reductions.
    return_info:
        Also return a :class:`SweepInfo` saying how the rows were actually split.

    Returns
    -------
    ``f``'s outputs with the padding rows removed, as ``jax.Array`` (single process) or NumPy
    arrays holding the full result on every process (several processes); and the
    :class:`SweepInfo` when ``return_info`` is true.
    """
    if not callable(f):
        raise TypeError(f"f: expected a callable, got {type(f).__name__}")
    if block is not None and (isinstance(block, bool) or not isinstance(block, int) or block < 1):
        raise ValueError(f"block: expected a positive int or None, got {block!r}")
    arrs, n = _check_arrays(arrays)
    mesh = row_mesh(devices)
    n_dev = mesh.devices.size
    blk = None if block is None else block_rows(n, block)
    unit = n_dev * (blk or 1)
    padded = -(-n // unit) * unit
    sharding = row_sharding(mesh)

    # Trace f once on the shape it will see (cached) to check its outputs before device work.
    seen = blk or padded // n_dev
    per_f, f_ref = _cache(f)
    shapes = _out_shapes(f, per_f, tuple(jax.ShapeDtypeStruct((seen, *a.shape[1:]), a.dtype) for a in arrs))
    flat = jax.tree_util.tree_flatten_with_path(shapes)[0]
    if not flat:
        raise ValueError("f: expected it to return at least one array, got an empty pytree")
    for path, leaf in flat:
        if leaf.ndim == 0 or leaf.shape[0] != seen:
            where = jax.tree_util.keystr(path) or "output"
            raise ValueError(
                f"f: expected every output to keep the {seen} input rows on its leading axis, "
                f"got {where} of shape {tuple(leaf.shape)}"
            )

    placed = [_place(_pad_rows(a, padded - n), sharding) for a in arrs]
    out = _jitted(per_f, f_ref, mesh, blk, len(arrs))(*placed)
    out_leaves = jax.tree_util.tree_leaves(out)
    info = _info(out_leaves[0], n, padded, blk) if return_info else None

    if jax.process_count() > 1 and not out_leaves[0].is_fully_addressable:
        from jax.experimental import multihost_utils

        out = multihost_utils.process_allgather(out, tiled=True)
    if padded != n:
        out = jax.tree_util.tree_map(lambda x: x[:n], out)
    return (out, info) if return_info else out
