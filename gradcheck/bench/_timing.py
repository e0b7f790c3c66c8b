"""How the benchmarks time a jitted program, and what they compare it with.

:func:`time_jitted`: ``jax.jit(f).lower(*args).compile()`` is timed on its own (trace + lower +
compile: the *compile* column); then the compiled program runs ``warmup`` times untimed and
``repeats`` times timed, each call ended by ``block_until_ready`` (JAX dispatches
asynchronously: without it one times the dispatch, not the work), and the *median* of the
repeats is reported with the minimum.

Why outputs go into a donated buffer: a fresh 256 MiB output is written at the rate the
kernel can hand out zeroed pages (about 2 GB/s on the reference machine), whatever the method;
``donate_argnums`` with ``keep_unused=True`` lets XLA write the result into the memory of the
previous result, so what is timed is the method, and the copy it is compared with
(:func:`copy_bandwidth`) is timed the same way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["DTYPE", "Timing", "compile_seconds", "copy_bandwidth", "growth_exponent", "target", "time_jitted"]

#: What the throughput groups run in (the dtype that a network trains in).
DTYPE = "float32"


#: JAX's compilation events (:mod:`jax.monitoring`): tracing to a jaxpr, lowering it to MLIR, XLA's compile.
_COMPILE_EVENTS = ("jaxpr_trace_duration", "jaxpr_to_mlir_module_duration", "backend_compile_duration")


@contextlib.contextmanager
def compile_seconds():
    """``with compile_seconds() as spent:`` ``spent["s"]`` is then the seconds JAX spent compiling
    inside the block (tracing, lowering and XLA's compile of every program and eager primitive,
    as :mod:`jax.monitoring` reports them): the part of a cold call that a warm one does not pay."""
    spent = {"s": 0.0}

    def listen(event: str, seconds: float, **_: Any) -> None:
        if event.rsplit("/", 1)[-1] in _COMPILE_EVENTS:
            spent["s"] += seconds

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        yield spent
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)


@dataclasses.dataclass(frozen=True)
class Timing:
    """Compile time apart from steady state: the median (and minimum) of ``repeats`` calls."""

    compile_s: float
    median_s: float
    min_s: float
    repeats: int

    def record(self) -> dict[str, float | int]:
        return {"compile_s": self.compile_s, "median_s": self.median_s, "min_s": self.min_s, "repeats": self.repeats}


def time_jitted(
    f: Callable, args: Sequence[Any], *, repeats: int = 5, warmup: int = 1, donate_first: bool = False
) -> tuple[Timing, Any]:
    """Compile ``f`` for ``args``, then time it: returns the :class:`Timing` and the last output.

    ``donate_first``: ``args[0]`` is a buffer shaped like the output, donated to each call, and
    each call's output is the next call's buffer (so the output is written in place).
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats}, {warmup}")
    jitted = jax.jit(f, donate_argnums=(0,) if donate_first else (), keep_unused=donate_first)
    t0 = time.perf_counter()
    compiled = jitted.lower(*args).compile()
    compile_s = time.perf_counter() - t0
    args = list(args)
    out = None
    times = []
    for i in range(warmup + repeats):
        t0 = time.perf_counter()
        out = compiled(*args)
        jax.block_until_ready(out)
        dt = time.perf_counter() - t0
        if donate_first:
            args[0] = out
        if i >= warmup:
            times.append(dt)
    return Timing(compile_s, statistics.median(times), min(times), repeats), out


def copy_bandwidth(nbytes: int = 256 * 2**20, repeats: int = 5) -> dict[str, float]:
    """The machine's copy write rate: bytes per second of a jitted copy into a donated buffer.

    The physical limit for a result that is written once: each byte of the output must be
    written, and a copy does nothing else (it also reads each byte once).
    """
    n = max(1, nbytes // 4)
    x = jnp.arange(n, dtype=jnp.float32)
    buf = jnp.zeros(n, jnp.float32)
    timing, out = time_jitted(lambda b, x: jnp.copy(x), (buf, x), repeats=repeats, donate_first=True)
    if not bool(out[-1] == n - 1):
        raise AssertionError("the copy benchmark did not copy")
    return {"bytes": n * 4, "bytes_per_s": n * 4 / timing.median_s, **timing.record()}


def growth_exponent(sizes: Sequence[float], seconds: Sequence[float]) -> float:
    """``p`` of the least-squares fit ``log t = p log n + c``: t grows as n^p."""
    x, y = np.log(np.asarray(sizes, float)), np.log(np.asarray(seconds, float))
    if len(x) < 2 or np.ptp(x) == 0:
        raise ValueError("growth_exponent: expected at least two different sizes")
    return float(np.polyfit(x, y, 1)[0])


def target(group: str, name: str, ratio: float, op: str, threshold: float) -> dict[str, Any]:
    """One target: a ratio measured in this run, and the bound it must meet."""
    if op not in (">=", "<="):
        raise ValueError(f"op: expected '>=' or '<=', got {op!r}")
    met = ratio >= threshold if op == ">=" else ratio <= threshold
    return {"group": group, "name": name, "ratio": float(ratio), "op": op, "threshold": threshold, "met": bool(met)}
