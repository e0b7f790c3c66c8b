"""``remedies``: per-layer gradient norms across a deep network, for the usual remedies.

Networks of ``depth`` hidden layers of 30 units (64 inputs, 10 sigmoid outputs, per-unit
cross-entropy, the first 1000 digits, as in ``vanishing``), one change at a time:

==========  ==============================================  ==============================
variant     hidden layer l                                  init
==========  ==============================================  ==============================
sigmoid     h = sigma(W h + b)                              W ~ N(0, 1/n), b ~ N(0, 1)
tanh        h = tanh(W h + b)                               same
relu        h = max(0, W h + b)                             same
relu-he     h = max(0, W h + b)                             W ~ N(0, 2/n), b = 0 (He)
residual    h = h + sigma(W h + b) - 1/2 (sigmoid + skip)   as sigmoid
batchnorm   h = sigma(BN(W h) + b), BN over the examples    W as sigmoid, b = 0, gain 1
==========  ==============================================  ==============================

(n = fan-in.  The first hidden layer maps the 64 inputs and has no skip; the residual branch
is centred, ``sigma - 1/2``, so the stream does not drift by +1/2 per block into saturation.)

Two measures per layer, both from one backward pass (a zero perturbation ``e`` added beside
each bias gives every example's ``delta_x^l = N dC/de_x^l``):

* **speed** ``||dC/db^l|| = ||(1/N) sum_x delta_x^l||``: Nielsen's speed of learning, as in
  ``vanishing``;
* **per example** ``sqrt(mean_x ||delta_x^l||^2)``: the size of the backpropagated signal
  itself, before averaging over examples (what the chain-rule product acts on).

The two differ when examples' gradients cancel in the average: in the batch-norm net, whose
backward pass removes the batch mean of the gradient at every layer, the speed of layers
below the last is small however large the per-example gradients are.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .._environment import environment
from .._x64 import float64
from ._common import (
    Result,
    block_size,
    check_count,
    cross_entropy,
    digits,
    figure,
    finish,
    prepare_out,
    progress,
    quantiles,
    standard_normals,
    sweep,
    sweep_record,
)

WIDTH = 30
VARIANTS = {
    "sigmoid": "sigmoid, W ~ N(0,1/n), b ~ N(0,1)",
    "tanh": "tanh, W ~ N(0,1/n), b ~ N(0,1)",
    "relu": "ReLU, W ~ N(0,1/n), b ~ N(0,1)",
    "relu-he": "ReLU, He init W ~ N(0,2/n), b = 0",
    "residual": "sigmoid residual blocks h + sigma(Wh+b) - 1/2",
    "batchnorm": "sigmoid after batch norm, b = 0",
}
DEFAULTS = {"seeds": 32, "depth": 50}
MAX_DEPTH = 200
_BLOCK = 8  # seeds per jitted block: per-example gradients are (depth, 1000, 30) each
_BN_EPS = 1e-5


def _act(variant):
    if variant == "tanh":
        return jnp.tanh
    if variant in ("relu", "relu-he"):
        return jax.nn.relu
    if variant == "residual":
        return lambda z: jax.nn.sigmoid(z) - 0.5
    return jax.nn.sigmoid


def _batchnorm(z):
    """Normalise each unit over the batch (the 1000 examples): mean 0, variance 1."""
    return (z - z.mean(0)) / jnp.sqrt(z.var(0) + _BN_EPS)


@functools.cache
def _per_layer(variant: str, depth: int):
    """vmapped seed -> (speed (depth,), per-example rms (depth,)) for one variant."""
    d = digits()
    x, y = d.x, d.y
    N, n = x.shape[0], WIDTH
    f = _act(variant)
    w_gain = np.sqrt(2.0) if variant == "relu-he" else 1.0
    zero_bias = variant in ("relu-he", "batchnorm")

    def one(seed):
        W0, b0, Ws, bs, Wo, bo = standard_normals(
            seed, [(x.shape[1], n), (n,), (depth - 1, n, n), (depth - 1, n), (n, 10), (10,)]
        )
        W0 = W0 * w_gain / np.sqrt(x.shape[1])
        Ws = Ws * w_gain / np.sqrt(n)
        Wo = Wo / np.sqrt(n)
        if zero_bias:
            b0, bs = jnp.zeros_like(b0), jnp.zeros_like(bs)

        def cost(e0, es):
            z = x @ W0
            if variant == "batchnorm":
                z = _batchnorm(z)
            h = f(z + b0 + e0)

            def layer(h, p):
                W, b, e = p
                z = h @ W
                if variant == "batchnorm":
                    z = _batchnorm(z)
                u = f(z + b + e)
                return (h + u if variant == "residual" else u), None

            h, _ = jax.lax.scan(layer, h, (Ws, bs, es))
            return cross_entropy(h @ Wo + bo, y)

        # dC/de_x^l = delta_x^l / N; the bias gradient is its sum over examples.
        g0, gs = jax.grad(cost, argnums=(0, 1))(jnp.zeros((N, n)), jnp.zeros((depth - 1, N, n)))
        g = jnp.concatenate([g0[None], gs])
        speed = jnp.linalg.norm(g.sum(axis=1), axis=-1)
        per_example = jnp.sqrt(jnp.mean(jnp.sum((N * g) ** 2, axis=-1), axis=-1))
        return speed, per_example

    return jax.vmap(one)


def remedies(
    seeds: int = DEFAULTS["seeds"],
    out: str | Path | None = None,
    *,
    depth: int = DEFAULTS["depth"],
    variants=None,
    console=None,
) -> Result:
    """Per-layer gradient norms of ``seeds`` networks of ``depth`` hidden layers per variant.

    ``variants`` picks a subset of :data:`VARIANTS` (default: all).  Writes ``remedies.png`` and
    ``remedies.json`` into ``out`` when given.
    """
    seeds = check_count(seeds, "seeds")
    depth = check_count(depth, "depth", minimum=2, maximum=MAX_DEPTH)
    if variants is None:
        variants = list(VARIANTS)
    else:
        if isinstance(variants, str):
            variants = [variants]
        variants = list(variants)
        bad = [v for v in variants if v not in VARIANTS]
        if bad or not variants:
            raise ValueError(f"variants: expected names among {', '.join(VARIANTS)}, got {bad or variants!r}")
    out = prepare_out(out)
    t0 = time.perf_counter()
    data = digits()
    block = block_size(seeds, _BLOCK)
    res, info = {}, None
    with float64(), progress(console) as bar:
        task = bar.add_task(f"remedies: {depth}-layer networks", total=seeds * len(variants))
        rows = np.arange(seeds, dtype=np.int32)
        for v in variants:
            (speed, per_ex), info = sweep(_per_layer(v, depth), [rows], block=block, bar=bar, task=task)
            res[v] = {
                "label": VARIANTS[v],
                "speed": quantiles(speed),
                "per_example": quantiles(per_ex),
                **_spans(speed, "speed"),
                **_spans(per_ex, "per_example"),
                # 1 when every example's gradient points the same way, ~0 when they cancel
                "coherence": (np.median(speed, 0) / np.median(per_ex, 0)).tolist(),
            }

    result = Result(
        "remedies",
        {
            "experiment": "remedies",
            "what": "per hidden layer l (1 = nearest the input): speed ||dC/db^l|| and per-example "
            "rms ||delta_x^l||, at initialisation",
            "environment": environment(),
            "dtype": "float64",
            "data": data.record(),
            "settings": {
                "seeds": seeds,
                "depth": depth,
                "width": WIDTH,
                "variants": VARIANTS,
                "cost": "per-unit cross-entropy of 10 sigmoid outputs",
            },
            "sweep": sweep_record(info, block),
            "variants": res,
        },
    )
    result.tables = [_table(res, seeds, depth)]
    result.findings = _findings(res, depth)
    result.figure = _plot(res, seeds, depth)
    return finish(result, out, t0)


def _spans(a: np.ndarray, name: str) -> dict:
    """How far the median curve spreads across layers: max/min, and last/first layer."""
    med = np.median(a, axis=0)
    if np.any(a <= 0):  # underflow to 0 (sigmoid deeper than ~400 layers): no finite ratio
        return {f"{name}_span": None, f"{name}_last_over_first": None, f"{name}_span_per_seed_median": None}
    return {
        f"{name}_span": float(med.max() / med.min()),
        f"{name}_last_over_first": float(med[-1] / med[0]),
        f"{name}_span_per_seed_median": float(np.median(a.max(1) / a.min(1))),
    }


def _num(x) -> str:
    return "inf (underflow)" if x is None else f"{x:.3g}"


def _le(x, bound) -> bool:
    return x is not None and x <= bound


def _table(res, seeds, depth):
    from rich.table import Table

    marks = sorted({0, depth // 4, depth // 2, 3 * depth // 4, depth - 2, depth - 1})
    t = Table(
        title=f"Gradient norm per hidden layer, {depth} layers of {WIDTH}: median of "
        f"{seeds} networks at initialisation (speed ||dC/db^l||, per-example rms)"
    )
    t.add_column("variant")
    t.add_column("measure")
    for m in marks:
        t.add_column(f"layer {m + 1}", justify="right")
    t.add_column("max/min", justify="right")
    for v, r in res.items():
        for meas in ("speed", "per_example"):
            med = r[meas]["median"]
            t.add_row(
                v if meas == "speed" else "",
                meas.replace("_", "-"),
                *[f"{med[m]:.1e}" for m in marks],
                _num(r[meas + "_span"]),
                end_section=meas == "per_example",
            )
    return t


def _findings(res, depth) -> list[str]:
    out = []
    for v, r in res.items():
        out.append(
            f"{v}: across {depth} layers the median speed spans a factor "
            f"{_num(r['speed_span'])} (last/first layer "
            f"{_num(r['speed_last_over_first'])}), the per-example gradient "
            f"{_num(r['per_example_span'])}."
        )
    for v, r in res.items():
        if _le(r["per_example_span"], 10) and not _le(r["speed_span"], 10) and v != "batchnorm":
            c = r["coherence"]
            out.append(
                f"{v}: the speed spans more than the per-example gradient because the "
                f"examples' gradients cancel in the average, more near the input: "
                f"speed / per-example is {c[0]:.2f} at layer 1 and {c[-1]:.2f} at layer "
                f"{depth}."
            )
    within = [v for v, r in res.items() if _le(r["per_example_span"], 10)]
    if within:
        out.append("Within an order of magnitude across depth (per example): " + ", ".join(within) + ".")
    if "batchnorm" in res:
        r = res["batchnorm"]["speed"]["median"]
        out.append(
            f"batchnorm: the speed of layers 1..{depth - 1} is {np.median(r[:-1]):.2g} "
            f"(median) against {r[-1]:.2g} for the last, although the per-example "
            f"gradients are of one size: batch norm's backward pass removes the batch "
            f"mean of the gradient, so a bias below another batch-normed layer learns "
            f"only through the examples' differences."
        )
    return out


def _plot(res, seeds, depth):
    fig = figure(13, 4.6)
    axes = fig.subplots(1, 2, sharey=True)
    colors = dict(zip(VARIANTS, ["tab:red", "tab:orange", "tab:brown", "tab:green", "tab:blue", "tab:purple"]))
    layers = np.arange(1, depth + 1)
    for ax, meas, title in (
        (axes[0], "speed", "speed of learning ||dC/db^l|| (Nielsen)"),
        (axes[1], "per_example", "per example: rms ||delta_x^l||"),
    ):
        for v, r in res.items():
            q = r[meas]
            ax.plot(layers, q["median"], color=colors[v], label=r["label"])
            ax.fill_between(layers, q["q10"], q["q90"], color=colors[v], alpha=0.15, lw=0)
        ax.set_yscale("log")
        ax.set_xlabel("hidden layer (1 = next to the input)")
        ax.set_title(f"{title}: median, 10-90% of {seeds}")
    axes[0].set_ylabel("gradient norm at initialisation")
    axes[1].legend(fontsize=7, loc="lower right")
    return fig
