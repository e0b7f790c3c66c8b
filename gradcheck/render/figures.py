"""Figures for the report, drawn by matplotlib's Agg backend from the claims' own findings.

Every number in a figure (a maximum, a crossing, a threshold, the width of a window) is what a
claim measured or proved: the figure reads it from the claim's :class:`~gradcheck.catalogue.ClaimResult`
(a finding's ``record``, or its ``curves`` for a sampled curve) and computes none of it again.
Only the plain curves of sigma and tanh are evaluated here, by ``jax.grad``, to be drawn.

Each builder takes a function ``result(claim_id) -> ClaimResult`` and returns a :class:`Figure`:
the matplotlib figure, a caption and the numbers it shows (``data``, which ``results.json``
records).  Builders use ``matplotlib.figure.Figure`` with an Agg canvas, never ``pyplot``, so no
global state and no display are involved.

Which figures a report draws is the catalogues' to say: a catalogue module lists its builders in
``FIGURES`` (every report of the catalogue) and ``CLAIM_FIGURES`` (claim id to builder, when the
claim is in the report), as callables or ``"module:function"`` strings (:func:`catalogue_figures`).
The builders here draw the claims of ``proofs``, which declares them so.
"""

from __future__ import annotations

import dataclasses
import importlib
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure as _MplFigure

from .._x64 import float64
from ..catalogue import ClaimResult, Settings, get, load

__all__ = [
    "Figure",
    "catalogue_figures",
    "make_figures",
    "layer_speeds",
    "sigmoid",
    "tanh",
    "window",
    "softmax_overflow",
    "plot_training",
]

Results = Callable[[str], ClaimResult]


@dataclasses.dataclass
class Figure:
    name: str  # file stem: figures/<name>.pdf and .png
    title: str
    caption: str  # prose with the numbers the claims established
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


def _finding(result: ClaimResult, key: str, where: str = "record"):
    """The first finding of ``result`` whose ``record`` (or ``curves``) has ``key``: the claim measured it."""
    if not result.ok:
        raise ValueError(
            f"{result.claim.id} did not hold ({result.summary}): its figure would show unestablished numbers"
        )
    for f in result.findings:
        if key in getattr(f, where):
            return f
    raise KeyError(f"{result.claim.id}: no finding carries {key!r} in its {where}")


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


# --- sigma and sigma' --------------------------------------------------------------------
def sigmoid(result: Results) -> Figure:
    """sigma and sigma', with the maximum that ``sigmoid.max_derivative`` proved."""
    rec = _finding(result("sigmoid.max_derivative"), "max_value").record
    top, at = rec["max_value"], rec["argmax"]
    z, s, ds = _curve_and_derivative(jax.nn.sigmoid, -8.0, 8.0)
    fig, (ax,) = _new()
    ax.plot(z, s, label=r"$\sigma(z)$")
    ax.plot(z, ds, label=r"$\sigma'(z)$ (jax.grad)")
    ax.plot([at], [top], "o", color="C1")
    ax.annotate(f"max {top:.4f} at z = {abs(at):.3f}", (at, top), xytext=(12, 4), textcoords="offset points")
    ax.set_xlabel("z")
    ax.legend(loc="upper left")
    data = {"max_derivative": top, "argmax": abs(at), "grid": [-8.0, 8.0, len(z)]}
    caption = (
        f"The logistic sigmoid and its derivative, computed by jax.grad in float64 on {len(z)} "
        f"points: the largest value of sigma' is {top:.6f}, at z = {abs(at):.3f} (sigmoid.max_derivative)."
    )
    return Figure("sigmoid", "sigma and sigma'", caption, data, fig)


# --- tanh and tanh' ----------------------------------------------------------------------
def tanh(result: Results) -> Figure:
    """tanh, tanh' and sigma', with the maximum of tanh' and the crossing that the tanh claims proved."""
    rec = _finding(result("tanh.max_derivative"), "max_value").record
    top, at = rec["max_value"], rec["argmax"]
    z_star = _finding(result("tanh.vs_sigmoid"), "z_star_value").record["z_star_value"]
    cross = [-z_star, z_star]
    z, t, dt = _curve_and_derivative(jnp.tanh, -4.0, 4.0)
    _, _, ds = _curve_and_derivative(jax.nn.sigmoid, -4.0, 4.0)
    fig, (ax,) = _new()
    ax.plot(z, t, label=r"$\tanh(z)$")
    ax.plot(z, dt, label=r"$\tanh'(z)$")
    ax.plot(z, ds, "--", label=r"$\sigma'(z)$")
    for c in cross:
        ax.axvline(c, color="gray", lw=0.8, ls=":")
    ax.set_xlabel("z")
    ax.legend(loc="upper left")
    data = {"max_derivative": top, "argmax": abs(at), "tanh_prime_equals_sigma_prime_at": cross}
    where = " and ".join(f"{c:.4f}" for c in cross)
    caption = (
        f"tanh and its derivative (jax.grad, float64), with sigma' for comparison. tanh' reaches "
        f"{top:.6f} at z = {abs(at):.3f}; tanh' and sigma' cross at z = {where}, and tanh' < sigma' "
        f"beyond them (tanh.max_derivative, tanh.vs_sigmoid)."
    )
    return Figure("tanh", "tanh and tanh'", caption, data, fig)


# --- the window |w sigma'(wa + b)| >= 1 --------------------------------------------------
def window(result: Results) -> Figure:
    """The width of the window against |w|, as ``chain.window`` measured it by bisection."""
    res = result("chain.window")
    curves = _finding(res, "abs_w", "curves").curves
    rec = _finding(res, "w_max").record
    w, width = np.asarray(curves["abs_w"]), np.asarray(curves["width"])
    top, at, opening = rec["w_max"], rec["w_argmax"], rec["opens_at_abs_w"]
    fig, (ax,) = _new()
    ax.plot(w, width, label=r"width of $\{a : |w\,\sigma'(wa+b)| \geq 1\}$")
    ax.plot([at], [top], "o", color="C1")
    ax.annotate(f"max {top:.4f} at |w| = {at:.3f}", (at, top), xytext=(12, -14), textcoords="offset points")
    ax.set_xlabel("|w|")
    ax.set_ylabel("width in a")
    ax.legend(loc="lower right")
    data = {
        "max_width": top,
        "argmax_abs_w": at,
        "opens_at_abs_w": opening,
        "empty_on_grid_below": float(w[np.nonzero(width > 0)[0][0]]),
        "grid": [float(w[0]), float(w[-1]), len(w)],
    }
    caption = (
        f"Width of the set of inputs a where a layer does not shrink the gradient, "
        f"|w sigma'(wa + b)| >= 1, against |w| (bisection on jax.grad of the sigmoid, float64; chain.window). "
        f"It is empty for |w| < 1/sigma'(0) = {opening:.4g} and never wider "
        f"than {top:.4f}, reached at |w| = {at:.3f}."
    )
    return Figure("window", "the |w sigma'(wa + b)| >= 1 window", caption, data, fig)


# --- softmax overflow --------------------------------------------------------------------
def softmax_overflow(result: Results) -> Figure:
    """The textbook and the shifted softmax along (v, 0, ..., 0), with ``softmax.stable``'s thresholds."""
    res = result("softmax.stable")
    _finding(res, "thresholds")  # the claim held, and measured its thresholds
    by_dtype = {f.record.get("dtype"): f for f in res.findings if "thresholds" in f.record and f.curves}
    fig, axes = _new(ncols=2, width=7.5)
    data: dict[str, Any] = {}
    for ax, dtype in zip(axes, ("float32", "float64")):
        if dtype not in by_dtype:
            raise KeyError(f"softmax.stable: no threshold finding for {dtype}")
        f = by_dtype[dtype]
        th, c = f.record["thresholds"], f.curves
        v, yn, ys = np.asarray(c["v"]), np.asarray(c["naive"]), np.asarray(c["shifted"])
        ax.plot(v, ys, lw=4, alpha=0.4, label="shifted: exp(a - max a)")
        ax.plot(v, yn, lw=1.2, label="naive: exp(a)")
        ax.axvline(th["non-finite"], color="C3", ls=":", lw=1)
        ax.annotate(
            f"naive is NaN above {th['non-finite']:.2f}",
            (th["non-finite"], 0.5),
            xytext=(-6, 0),
            textcoords="offset points",
            ha="right",
            fontsize=8,
        )
        ax.set_title(dtype, fontsize=10)
        ax.set_xlabel("largest logit v, logits (v, 0, ..., 0)")
        ax.set_ylim(0.0, 1.05)
        # the claim verified the shifted form finite for every finite input: it has no threshold
        data[dtype] = {
            "naive_threshold": th["non-finite"],
            "naive_inaccurate_above": th["wrong"],
            "naive_gradient_wrong_above": th["gradient wrong"],
            "shifted_threshold": None,
            "naive_nan_points": int(np.isnan(yn).sum()),
            "shifted_nan_points": int(np.isnan(ys).sum()),
        }
    axes[0].set_ylabel("first output of softmax")
    axes[0].legend(loc="lower left", fontsize=8)
    f32, f64 = data["float32"], data["float64"]
    caption = (
        "softmax of the logits (v, 0, ..., 0), first output. The naive form exp(a)/sum(exp(a)) overflows "
        f"(inf/inf = NaN) once v exceeds {f32['naive_threshold']:.4f} in float32 and "
        f"{f64['naive_threshold']:.4f} in float64; a little earlier, above {f32['naive_inaccurate_above']:.4f} "
        f"and {f64['naive_inaccurate_above']:.4f}, its output is already wrong (more than 0.001 off, down to 0), "
        f"and its Jacobian above {f32['naive_gradient_wrong_above']:.4f} and "
        f"{f64['naive_gradient_wrong_above']:.4f}. The shifted form exp(a - max a)/sum(...) never overflows "
        "(thresholds found by bisection on the JAX function; softmax.stable)."
    )
    return Figure("softmax_overflow", "softmax overflow threshold", caption, data, fig)


# --- per-layer speed of learning -----------------------------------------------------------
def plot_training(ax, tr: Mapping[str, Any], *, change_ax=None) -> None:
    """The during-training panel(s) of a training record: speeds with their 25-75% band; weight changes."""
    med = np.asarray(tr["speed_median"])
    lo, hi = np.asarray(tr["speed_q25"]), np.asarray(tr["speed_q75"])
    e = np.arange(med.shape[0])
    for l in range(med.shape[1]):
        ax.plot(e, med[:, l], label=f"hidden layer {l + 1}")
        ax.fill_between(e, lo[:, l], hi[:, l], alpha=0.15)
    k = tr["first_epoch_median_train_accuracy_above_half"]
    if k is not None:
        ax.axvline(k, color="0.4", ls=":", lw=1, label=f"median train accuracy 0.5 (epoch {k})")
    ax.set_yscale("log")
    ax.set_xlabel(f"epoch (mini-batch SGD, batch {tr['batch']}, lr {tr['lr']:g})")
    ax.set_ylabel(r"speed of learning $\|\partial C/\partial b^{l}\|$")
    acc = tr["final"]["heldout_accuracy_median"]
    ax.set_title(
        f"during training, {'-'.join(map(str, tr['network']))}: median, 25-75% of "
        f"{tr['seeds']} seeds; held-out accuracy {acc:.2f}",
        fontsize=9,
    )
    ax.legend(fontsize=7, loc="lower right")
    if change_ax is None:
        return
    ax = change_ax
    med = np.asarray(tr["change_median"])
    lo, hi = np.asarray(tr["change_q25"]), np.asarray(tr["change_q75"])
    names = [f"$W^{{{l + 1}}}$" for l in range(med.shape[1])]
    for l in range(med.shape[1]):
        ax.plot(e, med[:, l], label=f"{names[l]} ({tr['network'][l]}x{tr['network'][l + 1]})")
        ax.fill_between(e, lo[:, l], hi[:, l], alpha=0.15)
    ax.set_xlabel("epoch")
    ax.set_ylabel(r"$\|W^{l} - W^{l}_{0}\|_F \,/\, \|W^{l}_{0}\|_F$")
    ax.set_yscale("log")
    ax.set_title("how far each layer's weights moved from their initial values", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")


def layer_speeds(result: Results) -> Figure:
    """Seed 002's training statement, as the claim ``backprop.layer_speeds`` measured it."""
    tr = _finding(result("backprop.layer_speeds"), "speed_median", "curves").curves
    fig = _MplFigure(figsize=(11, 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, 2, i + 1) for i in range(2)]
    for ax in axes:
        ax.grid(True, alpha=0.3)
    plot_training(axes[0], tr, change_ax=axes[1])
    f, g = tr["final"], tr["gap_last_over_first"]
    k = tr["first_epoch_median_train_accuracy_above_half"]
    ch = f["weight_change"]["median"]
    caption = (
        rf"Speed of learning $\|\partial C/\partial b^{{l}}\|$ of the four hidden layers (left) and relative "
        rf"weight change $\|W^{{l}} - W^{{l}}_{{0}}\|_F/\|W^{{l}}_{{0}}\|_F$ (right) of a "
        f"{'-'.join(map(str, tr['network']))} sigmoid network, {tr['method']}, on 1000 of scikit-learn's digits; "
        f"median and 25-75% band of {tr['seeds']} seeds. Held-out accuracy {f['heldout_accuracy_median']:.3f}. "
        + (
            f"Until the network learns (epoch {k}) the last hidden layer is {g['plateau_geomean']:.0f} times faster "
            f"than the first; afterwards {g['after_learning_geomean']:.2f} times. "
            if k is not None
            else ""
        )
        + rf"At the end $W^{{1}}$ moved {ch[0]:.2f} and $W^{{{len(ch)}}}$ {ch[-1]:.2f} times their initial norm."
    )
    data = {
        k_: tr[k_]
        for k_ in (
            "network",
            "method",
            "seeds",
            "epochs",
            "lr",
            "batch",
            "first_epoch_median_train_accuracy_above_half",
            "gap_last_over_first",
            "ordered_fraction",
            "final",
        )
    }
    return Figure("layer_speeds", "Per-layer speed of learning and weight change during training", caption, data, fig)


def _builder(spec, catalogue: str) -> Callable[[Results], Figure]:
    """A figure builder given as a callable or as ``"module:function"`` (imported when drawn)."""
    if callable(spec):
        return spec
    module, _, attr = str(spec).partition(":")
    try:
        built = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError) as e:
        raise ValueError(f"catalogue {catalogue}: figure {spec!r} is not a 'module:function' builder ({e})") from None
    if not callable(built):
        raise ValueError(f"catalogue {catalogue}: figure {spec!r} is not callable")
    return built


def catalogue_figures(catalogues: Sequence[str] | None = None) -> tuple[list, dict[str, list]]:
    """The figures the catalogues declare: ``FIGURES`` (drawn in every report of the catalogue)
    and ``CLAIM_FIGURES`` (claim id to builder, drawn when the claim is in the report), each a
    callable ``result(claim_id) -> ClaimResult`` to :class:`Figure`, or its ``"module:function"``."""
    general: list = []
    per_claim: dict[str, list] = {}
    for name in load(catalogues):
        mod = importlib.import_module(name)  # loaded already: a dictionary look-up
        general += [_builder(b, name) for b in getattr(mod, "FIGURES", ())]
        for cid, b in dict(getattr(mod, "CLAIM_FIGURES", {})).items():
            per_claim.setdefault(cid, []).append(_builder(b, name))
    return general, per_claim


def make_figures(
    results: Iterable[ClaimResult], settings: Settings | None = None, catalogues: Sequence[str] | None = None
) -> list[Figure]:
    """The figures of the catalogues of the report, then those of the claims among ``results``.

    ``catalogues`` are the report's (``None``: the installed ones; see :func:`catalogue_figures`);
    a claim that a figure needs and that is not among ``results`` is run here, with ``settings``
    (default: the current profile).
    """
    runs = {r.claim.id: r for r in results}
    selected = list(runs)
    general, per_claim = catalogue_figures(catalogues)

    def result(claim_id: str) -> ClaimResult:
        if claim_id not in runs:
            runs[claim_id] = get(claim_id, catalogues).run(settings)
        return runs[claim_id]

    extra = [build for cid in selected for build in per_claim.get(cid, ())]
    return [build(result) for build in (*general, *extra)]
