"""The ``softmax`` group: the softmax Jacobian of a batch, closed form ``y_i (delta_ij - y_j)``
against ``vmap(jacrev(softmax))`` and ``vmap(jacfwd(softmax))``, C in {10, 100, 1000, 4000};
bytes written per second against the machine's copy write rate."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._timing import DTYPE, copy_bandwidth, target, time_jitted

__all__ = ["SOFTMAX_METHODS", "bench_softmax", "softmax_jacobian_closed"]


def softmax_jacobian_closed(a):
    """``J_ij = y_i (delta_ij - y_j)`` for one vector, the form claim ``softmax.jacobian`` proves.

    ``delta`` comes from two iotas compared inside the fused loop, not from a stored identity
    matrix: a C x C identity would be read from memory for every vector.
    """
    y = jax.nn.softmax(a)
    c = a.shape[-1]
    eye = jax.lax.broadcasted_iota(jnp.int32, (c, c), 0) == jax.lax.broadcasted_iota(jnp.int32, (c, c), 1)
    return y[:, None] * (eye.astype(y.dtype) - y[None, :])


SOFTMAX_METHODS: dict[str, Callable] = {
    "closed": jax.vmap(softmax_jacobian_closed),
    "jacrev": jax.vmap(jax.jacrev(jax.nn.softmax)),
    "jacfwd": jax.vmap(jax.jacfwd(jax.nn.softmax)),
}


def bench_softmax(
    quick: bool = False,
    sizes: Sequence[int] | None = None,
    out_bytes: int | None = None,
    repeats: int | None = None,
    bandwidth: dict | None = None,
) -> dict[str, Any]:
    """Time the three softmax Jacobians on a batch whose output is about ``out_bytes``."""
    sizes = tuple(sizes or ((10, 100, 1000) if quick else (10, 100, 1000, 4000)))
    out_bytes = out_bytes or (8 if quick else 256) * 2**20
    repeats = repeats or (3 if quick else 5)
    bandwidth = bandwidth or copy_bandwidth(out_bytes, repeats)
    rng = np.random.default_rng(0)
    rows: list[dict[str, Any]] = []
    for c in sizes:
        b = max(1, out_bytes // (4 * c * c))
        a = jnp.asarray(rng.normal(scale=3.0, size=(b, c)), jnp.float32)
        probe = a[: min(b, 4)]
        ref = np.asarray(SOFTMAX_METHODS["jacrev"](probe), np.float64)
        for name, f in SOFTMAX_METHODS.items():
            got = np.asarray(f(probe), np.float64)
            err = float(np.max(np.abs(got - ref)))
            buf = jnp.zeros((b, c, c), jnp.float32)
            timing, _ = time_jitted(lambda buf, a, f=f: f(a), (buf, a), repeats=repeats, donate_first=True)
            nbytes = b * c * c * 4
            rate = nbytes / timing.median_s
            rows.append(
                {
                    "C": c,
                    "B": b,
                    "method": name,
                    **timing.record(),
                    "output_bytes": nbytes,
                    "bytes_per_s": rate,
                    "fraction_of_copy": rate / bandwidth["bytes_per_s"],
                    "max_abs_diff_vs_jacrev": err,
                    "agrees": err <= 1e-6,
                }
            )
    targets = []
    by = {(r["C"], r["method"]): r for r in rows}
    c_t = 1000 if 1000 in sizes else max(sizes)
    if (c_t, "closed") in by:
        targets.append(
            target(
                "softmax",
                f"jacrev time / closed-form time, C = {c_t}",
                by[(c_t, "jacrev")]["median_s"] / by[(c_t, "closed")]["median_s"],
                ">=",
                5.0,
            )
        )
        targets.append(
            target(
                "softmax",
                f"closed-form bytes/s / copy write rate, C = {c_t}",
                by[(c_t, "closed")]["fraction_of_copy"],
                ">=",
                0.70,
            )
        )
    return {"dtype": DTYPE, "output_bytes": out_bytes, "copy": bandwidth, "rows": rows, "targets": targets}
