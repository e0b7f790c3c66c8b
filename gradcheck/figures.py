"""Figures for the report, computed by JAX (float64, scoped), drawn by matplotlib's Agg backend.

Every curve and every number in a caption is computed here: the activation curves and their
derivatives by ``jax.grad``, the width of the window where ``|w sigma'(wa + b)| >= 1`` by
bisection on ``jax.grad(jax.nn.sigmoid)``, the softmax overflow thresholds by bisection on the
naive and the shifted softmax in each dtype.  Nothing is drawn from a constant typed in.

Each builder returns a :class:`Figure`: the matplotlib figure, a caption and the computed
numbers (``data``, which ``results.json`` records).  Builders use ``matplotlib.figure.Figure``
with an Agg canvas, never ``pyplot``, so no global state and no display are involved.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure as _MplFigure

from ._x64 import float64

__all__ = ["Figure", "FIGURES", "CLAIM_FIGURES", "make_figures", "layer_speeds", "sigmoid", "tanh", "window", "softmax_overflow",
           "window_width", "overflow_threshold"]


@dataclasses.dataclass
class Figure:
    name: str  # file stem: figures/<name>.pdf and .png
    title: str
    caption: str  # prose with the computed numbers
    data: dict[str, Any]
    fig: _MplFigure

    def to_bytes(self, fmt: str) -> bytes:
        """The figure as ``pdf`` (for LaTeX) or ``png`` (for Markdown)."""
        if fmt not in ("pdf", "png", "svg"):
            raise ValueError(f"fmt must be 'pdf', 'png' or 'svg', got {fmt!r}")
        buf = io.BytesIO()
        # fixed metadata: the same figure gives the same bytes
        meta = {"pdf": {"CreationDate": None}, "svg": {"Date": None}}.get(fmt, {})
        self.fig.savefig(buf, format=fmt, dpi=150, bbox_inches="tight", metadata=meta)
        return buf.getvalue()

    def record(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "caption": self.caption, "data": self.data}


def _new(ncols: int = 1, width: float = 6.0) -> tuple[_MplFigure, list]:
    fig = _MplFigure(figsize=(width, 3.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    for ax in axes:
        ax.grid(True, alpha=0.3)
    return fig, axes


def _curve_and_derivative(f: Callable, lo: float, hi: float, n: int = 1601):
    with float64():
        z = jnp.linspace(lo, hi, n, dtype=jnp.float64)
        y, dy = jax.jit(jax.vmap(jax.value_and_grad(f)))(z)
        return np.asarray(z), np.asarray(y), np.asarray(dy)


def _crossings(x: np.ndarray, g: np.ndarray) -> list[float]:
    """Zeros of g on the grid, by linear interpolation between sign changes."""
    i = np.nonzero(np.sign(g[:-1]) * np.sign(g[1:]) < 0)[0]
    return [float(x[k] - g[k] * (x[k + 1] - x[k]) / (g[k + 1] - g[k])) for k in i]


# --- sigma and sigma' --------------------------------------------------------------------
def sigmoid() -> Figure:
    z, s, ds = _curve_and_derivative(jax.nn.sigmoid, -8.0, 8.0)
    k = int(np.argmax(ds))
    fig, (ax,) = _new()
    ax.plot(z, s, label=r"$\sigma(z)$")
    ax.plot(z, ds, label=r"$\sigma'(z)$ (jax.grad)")
    ax.plot([z[k]], [ds[k]], "o", color="C1")
    ax.annotate(f"max {ds[k]:.4f} at z = {abs(z[k]):.3f}", (z[k], ds[k]), xytext=(12, 4), textcoords="offset points")
    ax.set_xlabel("z")
    ax.legend(loc="upper left")
    data = {"max_derivative": float(ds[k]), "argmax": float(z[k]), "grid": [-8.0, 8.0, len(z)]}
    caption = (f"The logistic sigmoid and its derivative, computed by jax.grad in float64 on {len(z)} "
               f"points: the largest value of sigma' on the grid is {ds[k]:.6f}, at z = {abs(z[k]):.3f}.")
    return Figure("sigmoid", "sigma and sigma'", caption, data, fig)


# --- tanh and tanh' ----------------------------------------------------------------------
def tanh() -> Figure:
    z, t, dt = _curve_and_derivative(jnp.tanh, -4.0, 4.0)
    _, _, ds = _curve_and_derivative(jax.nn.sigmoid, -4.0, 4.0)
    cross = _crossings(z, dt - ds)
    fig, (ax,) = _new()
    ax.plot(z, t, label=r"$\tanh(z)$")
    ax.plot(z, dt, label=r"$\tanh'(z)$")
    ax.plot(z, ds, "--", label=r"$\sigma'(z)$")
    for c in cross:
        ax.axvline(c, color="gray", lw=0.8, ls=":")
    ax.set_xlabel("z")
    ax.legend(loc="upper left")
    k = int(np.argmax(dt))
    data = {"max_derivative": float(dt[k]), "argmax": float(z[k]), "tanh_prime_equals_sigma_prime_at": cross}
    where = " and ".join(f"{c:.4f}" for c in cross) or "nowhere on the grid"
    caption = (f"tanh and its derivative (jax.grad, float64), with sigma' for comparison. tanh' reaches "
               f"{dt[k]:.6f} at z = {abs(z[k]):.3f}; tanh' and sigma' cross at z = {where}, and tanh' < sigma' "
               f"beyond them.")
    return Figure("tanh", "tanh and tanh'", caption, data, fig)


# --- the window |w sigma'(wa + b)| >= 1 --------------------------------------------------
def window_width(abs_w: np.ndarray, iterations: int = 64) -> np.ndarray:
    """Width in ``a`` of {a : |w sigma'(w a + b)| >= 1}, for each |w| (any b: it only shifts the set).

    With u = w a + b the set is {u : sigma'(u) >= 1/|w|}, symmetric about 0 because sigma' is
    even; sigma' decreases on u > 0, so its right end u* is found by bisection on
    ``jax.grad(jax.nn.sigmoid)``, and the width in a is 2 u* / |w|.  Empty (width 0) when
    |w| sigma'(0) < 1.  64 halvings of [0, 50] reach float64 resolution.
    """
    with float64():
        return np.asarray(_window_width(jnp.asarray(abs_w, dtype=jnp.float64), iterations))


@jax.jit
def _window_width(w, iterations):
    dsig = jax.vmap(jax.grad(jax.nn.sigmoid))
    target = 1.0 / w

    def halve(_, bounds):
        lo, hi = bounds
        mid = (lo + hi) / 2
        inside = dsig(mid) >= target
        return jnp.where(inside, mid, lo), jnp.where(inside, hi, mid)

    # sigma'(50) ~ 2e-22: below 1/|w| for any |w| drawn, so u* lies in [0, 50]
    lo, _ = jax.lax.fori_loop(0, iterations, halve, (jnp.zeros_like(w), jnp.full_like(w, 50.0)))
    empty = dsig(jnp.zeros_like(w)) < target
    return jnp.where(empty, 0.0, 2 * lo / w)


def window() -> Figure:
    w = np.linspace(0.5, 40.0, 2000)
    width = window_width(w)
    k = int(np.argmax(width))
    fine = np.linspace(w[max(k - 1, 0)], w[min(k + 1, len(w) - 1)], len(w))  # refine the maximum
    fw = window_width(fine)
    j = int(np.argmax(fw))
    with float64():  # the window opens where |w| sigma'(0) = 1
        opening = float(1.0 / jax.grad(jax.nn.sigmoid)(jnp.float64(0.0)))
    fig, (ax,) = _new()
    ax.plot(w, width, label=r"width of $\{a : |w\,\sigma'(wa+b)| \geq 1\}$")
    ax.plot([fine[j]], [fw[j]], "o", color="C1")
    ax.annotate(f"max {fw[j]:.4f} at |w| = {fine[j]:.3f}", (fine[j], fw[j]), xytext=(12, -14),
                textcoords="offset points")
    ax.set_xlabel("|w|")
    ax.set_ylabel("width in a")
    ax.legend(loc="lower right")
    data = {"max_width": float(fw[j]), "argmax_abs_w": float(fine[j]),
            "opens_at_abs_w": opening,
            "empty_on_grid_below": float(w[np.nonzero(width > 0)[0][0]]), "grid": [0.5, 40.0, len(w)]}
    caption = (f"Width of the set of inputs a where a layer does not shrink the gradient, "
               f"|w sigma'(wa + b)| >= 1, against |w| (bisection on jax.grad of the sigmoid, float64). "
               f"It is empty for |w| < 1/sigma'(0) = {opening:.4g} and never wider "
               f"than {fw[j]:.4f}, reached at |w| = {fine[j]:.3f}.")
    return Figure("window", "the |w sigma'(wa + b)| >= 1 window", caption, data, fig)


# --- softmax overflow --------------------------------------------------------------------
def _softmax_naive(a):
    e = jnp.exp(a)
    return e / jnp.sum(e)


def _softmax_shifted(a):
    e = jnp.exp(a - jnp.max(a))
    return e / jnp.sum(e)


def _logits(t, dtype):
    # the truth is the same for every t: softmax([t, t - 1]) = (e, 1) / (e + 1)
    return jnp.stack([t, t - 1.0]).astype(dtype)


def overflow_threshold(softmax: Callable, dtype: str, lo: float = 0.0, hi: float = 1e5,
                       iterations: int = 64, rtol: float | None = None) -> float | None:
    """Largest max-logit t (to float64 bisection precision) at which ``softmax([t, t - 1])`` is finite.

    With ``rtol``: at which it is also within ``rtol`` of the true value (e, 1) / (e + 1),
    computed in float64 by the shifted form.  None when it holds on the whole range [lo, hi].
    One jit: the two ends and the 64 halvings of [lo, hi] run as one compiled program.
    """
    with float64():
        ok_lo, ok_hi, t = _bisect(softmax, dtype, iterations, rtol)(jnp.float64(lo), jnp.float64(hi))
    if not bool(ok_lo):
        raise ValueError(f"softmax is not finite (or not accurate) at max logit {lo} in {dtype}")
    return None if bool(ok_hi) else float(t)


def _bisect(softmax, dtype, iterations, rtol):
    def good(t):
        y = softmax(_logits(t, dtype))
        ok = jnp.all(jnp.isfinite(y))
        if rtol is not None:
            truth = _softmax_shifted(_logits(jnp.float64(0.0), jnp.float64))  # the same for every t
            ok &= jnp.all(jnp.abs(y.astype(jnp.float64) - truth) <= rtol * truth)
        return ok

    def halve(_, bounds):
        lo, hi = bounds
        mid = (lo + hi) / 2
        ok = good(mid)
        return jnp.where(ok, mid, lo), jnp.where(ok, hi, mid)

    def run(lo, hi):
        return good(lo), good(hi), jax.lax.fori_loop(0, iterations, halve, (lo, hi))[0]

    return jax.jit(run)


def _first_outputs(ts: np.ndarray, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    with float64():
        both = jax.jit(jax.vmap(lambda t: jnp.stack([_softmax_naive(_logits(t, dtype))[0],
                                                     _softmax_shifted(_logits(t, dtype))[0]])))
        out = np.asarray(both(jnp.asarray(ts, dtype=jnp.float64)), dtype=np.float64)
    return out[:, 0], out[:, 1]


def softmax_overflow() -> Figure:
    fig, axes = _new(ncols=2, width=7.5)
    data: dict[str, Any] = {}
    for ax, dtype, top in zip(axes, ("float32", "float64"), (120.0, 800.0)):
        naive_t = overflow_threshold(_softmax_naive, dtype)
        wrong_t = overflow_threshold(_softmax_naive, dtype, rtol=1e-3)
        shifted_t = overflow_threshold(_softmax_shifted, dtype)
        ts = np.linspace(0.0, top, 801)
        yn, ys = _first_outputs(ts, dtype)
        ax.plot(ts, ys, lw=4, alpha=0.4, label="shifted: exp(a - max a)")
        ax.plot(ts, yn, lw=1.2, label="naive: exp(a)")
        if naive_t is not None:
            ax.axvline(naive_t, color="C3", ls=":", lw=1)
            ax.annotate(f"naive is NaN above {naive_t:.2f}", (naive_t, 0.5), xytext=(-6, 0),
                        textcoords="offset points", ha="right", fontsize=8)
        ax.set_title(dtype, fontsize=10)
        ax.set_xlabel("max logit t, logits (t, t - 1)")
        ax.set_ylim(0.0, 1.0)
        data[dtype] = {"naive_threshold": naive_t, "naive_inaccurate_above": wrong_t, "shifted_threshold": shifted_t,
                       "naive_nan_points": int(np.isnan(yn).sum()), "shifted_nan_points": int(np.isnan(ys).sum())}
    axes[0].set_ylabel("first output of softmax")
    axes[0].legend(loc="lower left", fontsize=8)

    def fmt(x):
        return "never (up to 1e5)" if x is None else f"{x:.4f}"

    caption = ("softmax of the logits (t, t - 1), whose true value is the same for every t. The naive form "
               f"exp(a)/sum(exp(a)) overflows (inf/inf = NaN) once t exceeds {fmt(data['float32']['naive_threshold'])} "
               f"in float32 and {fmt(data['float64']['naive_threshold'])} in float64 (found by bisection); a little "
               f"earlier, above {fmt(data['float32']['naive_inaccurate_above'])} and "
               f"{fmt(data['float64']['naive_inaccurate_above'])}, its output is already wrong (more than 0.1% off, "
               f"down to 0). The "
               f"shifted form exp(a - max a)/sum(...) overflows {fmt(data['float64']['shifted_threshold'])}.")
    return Figure("softmax_overflow", "softmax overflow threshold", caption, data, fig)


#: The report's figures, in order.
def layer_speeds() -> Figure:
    """Seed 002's training statement, measured (the claim ``backprop.layer_speeds``)."""
    from .experiments import _training

    tr = _training.train(**_training.SETTING)  # computed once: the claim's own measurement
    fig = _MplFigure(figsize=(11, 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, 2, i + 1) for i in range(2)]
    for ax in axes:
        ax.grid(True, alpha=0.3)
    _training.plot(axes[0], tr, change_ax=axes[1])
    f, g = tr["final"], tr["gap_last_over_first"]
    k = tr["first_epoch_median_train_accuracy_above_half"]
    ch = f["weight_change"]["median"]
    caption = (
        rf"Speed of learning $\|\partial C/\partial b^{{l}}\|$ of the four hidden layers (left) and relative "
        rf"weight change $\|W^{{l}} - W^{{l}}_{{0}}\|_F/\|W^{{l}}_{{0}}\|_F$ (right) of a "
        f"{'-'.join(map(str, tr['network']))} sigmoid network, {tr['method']}, on 1000 of scikit-learn's digits; "
        f"median and 25-75% band of {tr['seeds']} seeds. Held-out accuracy {f['heldout_accuracy_median']:.3f}. "
        + (f"Until the network learns (epoch {k}) the last hidden layer is {g['plateau_geomean']:.0f} times faster "
           f"than the first; afterwards {g['after_learning_geomean']:.2f} times. " if k is not None else "")
        + rf"At the end $W^{{1}}$ moved {ch[0]:.2f} and $W^{{{len(ch)}}}$ {ch[-1]:.2f} times their initial norm.")
    data = {k_: tr[k_] for k_ in ("network", "method", "seeds", "epochs", "lr", "batch",
                                  "first_epoch_median_train_accuracy_above_half", "gap_last_over_first",
                                  "ordered_fraction", "final")}
    return Figure("layer_speeds", "Per-layer speed of learning and weight change during training", caption,
                  data, fig)


FIGURES: tuple[Callable[[], Figure], ...] = (sigmoid, tanh, window, softmax_overflow)

#: Figures that belong to one claim: drawn when the claim is in the report.
CLAIM_FIGURES: dict[str, Callable[[], Figure]] = {"backprop.layer_speeds": layer_speeds}


def make_figures(claim_ids=None) -> list[Figure]:
    """The general figures, then those of the claims in ``claim_ids`` (all of them when None)."""
    extra = [build for cid, build in CLAIM_FIGURES.items() if claim_ids is None or cid in claim_ids]
    return [build() for build in (*FIGURES, *extra)]
