"""``vanishing``: Nielsen's per-layer speed of learning (chapter 5), on scikit-learn's digits.

Networks [64, 30, 30, 10], [64, 30, 30, 30, 10] and [64, 30, 30, 30, 30, 10]: sigmoid in every
layer, per-unit cross-entropy cost, weights N(0, 1)/sqrt(n_in) and biases N(0, 1) (Nielsen's
``default_weight_initializer``, behind his figures), and plain N(0, 1) weights as the notes
assume.  The *speed of learning* of hidden layer l is ``||dC/db^l||``, the norm of the
gradient of the cost averaged over the 1000 training examples with respect to that layer's
biases.  Measured at initialisation over many seeds (one jitted, vmapped program per network,
sharded over the devices), and during training by mini-batch stochastic gradient descent, as in
his "during training" plot (:mod:`gradcheck.experiments._training`: the setting, and how it
differs from his script).

Why the one-neuron argument of the notes does not carry over unchanged: there, each layer back
multiplies the gradient by ``w sigma'(z)`` with ``|w| < 1`` and ``sigma' <= 1/4``, so the
speed falls at least 4-fold per layer.  With n-unit layers it is multiplied by
``Sigma'(z^l) (W^{l+1})^T``, whose gain on a vector is about ``sqrt(n) s rms(sigma'(z^l))`` for
weights of standard deviation s (n independent terms add in quadrature).  With
s = 1/sqrt(n) the sqrt(n) cancels and the fall per layer is ``1/rms(sigma')``, about 5; with
plain N(0, 1) it is ``1/(sqrt(30) rms(sigma'))``, under 2.  The experiment measures the ratio and
this estimate side by side.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._environment import environment
from .._x64 import float64
from ..render.figures import plot_training
from . import _training
from ._common import (
    Result,
    block_size,
    check_count,
    check_positive,
    digits,
    figure,
    finish,
    init_network,
    network_cost,
    network_sizes,
    pre_activations,
    prepare_out,
    progress,
    quantiles,
    sweep,
    sweep_record,
)

#: Hidden layers of the three networks.
NETWORKS = ((30, 30), (30, 30, 30), (30, 30, 30, 30))

#: Nielsen's published speeds of learning at initialisation (MNIST, chapter 5), for comparison.
NIELSEN_MNIST = {
    (30, 30): (0.07, 0.31),
    (30, 30, 30): (0.012, 0.060, 0.283),
    (30, 30, 30, 30): (0.003, 0.017, 0.070, 0.285),
}

#: The two initialisations: weight standard deviation 1/sqrt(n_in) or 1; biases N(0, 1).
INITS = {"scaled": "N(0,1)/sqrt(n_in)", "plain": "N(0,1)"}

DEFAULTS: dict[str, Any] = {  # ints, and the learning rate a float
    "seeds": 200,
    "train_seeds": _training.SETTING["seeds"],
    "epochs": _training.SETTING["epochs"],
    "lr": _training.SETTING["lr"],
    "batch": _training.SETTING["batch"],
}
_BLOCK = 50  # seeds per jitted block at initialisation


@functools.cache
def _at_init(hidden):
    """vmapped (seed, scaled) -> (speed per hidden layer, estimated fall per layer)."""
    d = digits()
    x, y = d.x, d.y

    def one(seed, scaled):
        Ws, bs = init_network(seed, hidden, scaled)
        g = jax.grad(network_cost, argnums=1)(Ws, bs, x, y)
        speed = jnp.stack([jnp.linalg.norm(g[l]) for l in range(len(hidden))])
        # The n-unit version of the notes' factor |w sigma'|: gain of Sigma'(z^l) W^{l+1}^T
        # on a random vector is sqrt(n_l) * std(W^{l+1}) * rms(sigma'(z^l)).
        zs = pre_activations(Ws, bs, x)
        est = []
        for l in range(len(hidden) - 1):
            s = jax.nn.sigmoid(zs[l])
            rms = jnp.sqrt(jnp.mean((s * (1 - s)) ** 2))
            n = hidden[l]
            std = jnp.where(scaled > 0, 1.0 / np.sqrt(n), 1.0)
            est.append(1.0 / (np.sqrt(n) * std * rms))
        return speed, jnp.stack(est) if est else jnp.zeros((0,))

    return jax.vmap(one)


def vanishing(
    seeds: int = DEFAULTS["seeds"],
    out: str | Path | None = None,
    *,
    train_seeds: int = DEFAULTS["train_seeds"],
    epochs: int = DEFAULTS["epochs"],
    lr: float = DEFAULTS["lr"],
    batch: int = DEFAULTS["batch"],
    console=None,
) -> Result:
    """Per-layer speed of learning at initialisation (``seeds`` networks per network shape and
    initialisation) and during mini-batch stochastic gradient descent (``train_seeds`` networks
    of four hidden layers, ``epochs`` epochs over the 1000 training images in mini-batches of
    ``batch``, learning rate ``lr``; ``epochs=0`` skips training): see
    :mod:`gradcheck.experiments._training`.

    Writes ``vanishing.png`` and ``vanishing.json`` into ``out`` when given; progress and
    nothing else goes to ``console`` (a rich Console) when given.
    """
    seeds = check_count(seeds, "seeds")
    train_seeds = check_count(train_seeds, "train_seeds")
    epochs = check_count(epochs, "epochs", minimum=0)
    lr = check_positive(lr, "lr")
    batch = check_count(batch, "batch", maximum=1000)
    out = prepare_out(out)
    t0 = time.perf_counter()
    data = digits()

    at_init: dict[str, dict[str, dict]] = {}
    raw: dict[tuple, np.ndarray] = {}
    info = None
    block = block_size(seeds, _BLOCK)
    with float64(), progress(console) as bar:
        task = bar.add_task("vanishing: networks at init", total=seeds * len(NETWORKS) * 2)
        seed_rows = np.arange(seeds, dtype=np.int32)
        for hidden in NETWORKS:
            fn = _at_init(hidden)
            for init in INITS:
                scaled = np.full(seeds, 1.0 if init == "scaled" else 0.0)
                (speed, est), info = sweep(fn, [seed_rows, scaled], block=block, bar=bar, task=task)
                raw[(hidden, init)] = speed
                ratios = speed[:, 1:] / speed[:, :-1]
                at_init.setdefault(init, {})[_name(hidden)] = {
                    "hidden": list(hidden),
                    "speed": quantiles(speed),
                    "speed_per_seed": speed.tolist(),
                    "adjacent_ratio": quantiles(ratios),
                    "median_adjacent_ratio": float(np.median(ratios)),
                    "estimated_ratio": quantiles(est),
                    "median_estimated_ratio": float(np.median(est)),
                    "grows_toward_output_fraction": float(np.mean(np.all(ratios > 1, axis=1))),
                    "nielsen_mnist": list(NIELSEN_MNIST[hidden]),
                }

    training = None
    if epochs:
        training = _training.train(NETWORKS[-1], train_seeds, epochs, lr, batch, console=console)

    result = Result(
        "vanishing",
        {
            "experiment": "vanishing",
            "what": "norm of dC/db^l per hidden layer l, cost averaged over the training examples",
            "environment": environment(),
            "dtype": "float64",
            "data": data.record(),
            "settings": {
                "seeds": seeds,
                "train_seeds": train_seeds,
                "epochs": epochs,
                "lr": lr,
                "batch": batch,
                "cost": "per-unit cross-entropy of sigmoid outputs",
                "inits": {k: v + " weights, N(0,1) biases" for k, v in INITS.items()},
                "networks": [list(network_sizes(h)) for h in NETWORKS],
            },
            "sweep": sweep_record(info, block),
            "at_init": at_init,
            "training": training,
        },
    )
    result.tables = [_init_table(at_init, seeds)]
    if training:
        result.tables.append(_training_table(training))
    result.findings = _findings(at_init, training)
    result.figure = _plot(at_init, training, raw, seeds)
    return finish(result, out, t0)


def _name(hidden) -> str:
    return "-".join(str(n) for n in network_sizes(hidden))


def _fmt(q, i) -> str:
    return f"{q['median'][i]:.3g}\n[dim]{q['q25'][i]:.2g}-{q['q75'][i]:.2g}[/dim]"


def _init_table(at_init, seeds):
    from rich.table import Table

    t = Table(
        title=f"Speed of learning ||dC/db^l|| at initialisation, digits: median "
        f"(and 25%-75%) of {seeds} networks; Nielsen's MNIST figures beside"
    )
    t.add_column("hidden")
    t.add_column("std(W)")
    for l in range(1, 5):
        t.add_column(f"layer {l}", justify="right")
    t.add_column("ratio", justify="right")
    t.add_column("estimate", justify="right")
    t.add_column("grows", justify="right")
    std = {"scaled": "1/sqrt(n_in)", "plain": "1"}
    for hidden in NETWORKS:
        for init in INITS:
            r = at_init[init][_name(hidden)]
            cells = [_fmt(r["speed"], i) for i in range(len(hidden))] + [""] * (4 - len(hidden))
            t.add_row(
                "-".join(map(str, hidden)),
                std[init],
                *cells,
                f"{r['median_adjacent_ratio']:.2f}",
                f"{r['median_estimated_ratio']:.2f}",
                f"{100 * r['grows_toward_output_fraction']:.0f}%",
            )
        nm = NIELSEN_MNIST[hidden]
        ratios = [b / a for a, b in zip(nm[:-1], nm[1:])]
        t.add_row(
            "[dim]Nielsen[/dim]",
            "[dim]1/sqrt(n_in)[/dim]",
            *[f"[dim]{v}[/dim]" for v in nm],
            *[""] * (4 - len(nm)),
            f"[dim]{np.median(ratios):.2f}[/dim]",
            "",
            "",
            end_section=True,
        )
    t.caption = (
        "ratio: median over seeds and layers of ||dC/db^(l+1)|| / ||dC/db^l||; "
        "estimate: 1/(sqrt(n) std(W) rms sigma'(z^l)); grows: share of seeds whose "
        "speed rises at every layer toward the output"
    )
    return t


def _training_table(tr):
    from rich.table import Table

    E = tr["epochs"]
    marks = sorted({0, 1, 2, 5, 10, 20, 50, 100, 150, 200, 300, 400, E} & set(range(E + 1)))
    t = Table(
        title=f"During training: {'-'.join(map(str, tr['network']))}, {tr['method']}; median of {tr['seeds']} networks"
    )
    t.add_column("epoch", justify="right")
    H = len(tr["speed_median"][0])
    for l in range(H):
        t.add_column(f"speed {l + 1}", justify="right")
    t.add_column("last/first", justify="right")
    for l in range(len(tr["change_median"][0])):
        t.add_column(f"dW^{l + 1}", justify="right")
    t.add_column("cost", justify="right")
    t.add_column("train acc", justify="right")
    for e in marks:
        sp_ = tr["speed_median"][e]
        t.add_row(
            str(e),
            *[f"{v:.2e}" for v in sp_],
            f"{sp_[-1] / sp_[0]:.2f}",
            *[f"{v:.2f}" for v in tr["change_median"][e]],
            f"{tr['cost_median'][e]:.3f}",
            f"{tr['train_accuracy_median'][e]:.2f}",
        )
    t.caption = (
        "speed l: ||dC/db^l|| over the 1000 training images at the start of the epoch "
        "(the last row: after training); dW^l: ||W^l - W^l_0||_F / ||W^l_0||_F"
    )
    return t


def _findings(at_init, training) -> list[str]:
    out = []
    for init, label in INITS.items():
        rs = [at_init[init][_name(h)] for h in NETWORKS]
        ratio = float(np.median([r["median_adjacent_ratio"] for r in rs]))
        est = float(np.median([r["median_estimated_ratio"] for r in rs]))
        grows = min(r["grows_toward_output_fraction"] for r in rs)
        out.append(
            f"{label} weights: the speed of learning rises toward the output by a median "
            f"factor {ratio:.2f} per layer (estimate {est:.2f}); it rises at every layer "
            f"in {100 * grows:.1f}% of the seeds (the least of the three networks)."
        )
    plain = float(np.median([at_init["plain"][_name(h)]["median_adjacent_ratio"] for h in NETWORKS]))
    out.append(
        f"The notes' one-neuron argument (|w sigma'(z)| < 1/4 when |w| < 1, so at least a "
        f"factor 4 per layer) does not carry over unchanged to 30-unit layers: with plain N(0,1) "
        f"weights the measured factor is {plain:.2f}, because the 30 terms of (W^T delta)_i add "
        f"in quadrature (gain sqrt(30) std(W) rms sigma'); Nielsen's factor of 4 to 6 needs the "
        f"1/sqrt(n_in) scaling, which cancels the sqrt(30)."
    )
    nm = NIELSEN_MNIST[NETWORKS[-1]]
    ours = at_init["scaled"][_name(NETWORKS[-1])]["speed"]["median"]
    out.append(
        "Four hidden layers, N(0,1)/sqrt(n_in): digits "
        + ", ".join(f"{v:.3g}" for v in ours)
        + "; Nielsen's MNIST "
        + ", ".join(str(v) for v in nm)
        + "."
    )
    if training:
        out.extend(training_findings(training))
    return out


def training_findings(tr) -> list[str]:
    """The during-training result in words, every number from ``tr`` (a training record)."""
    f, g = tr["final"], tr["gap_last_over_first"]
    k = tr["first_epoch_median_train_accuracy_above_half"]
    ch = f["weight_change"]["median"]
    out = [
        f"Mini-batch SGD ({tr['method']}): median held-out accuracy "
        f"{f['heldout_accuracy_median']:.3f} on {tr['heldout_examples']} images "
        f"(chance 0.1), training accuracy {np.median(f['train_accuracy']):.3f}."
    ]
    if k is not None:
        out.append(
            f"Before the network learns (epochs 1-{k - 1}; median training accuracy reaches 0.5 at "
            f"epoch {k}) the last hidden layer learns {g['plateau_geomean']:.0f}x faster than the "
            f"first (geometric mean over seeds and epochs; {g['at_init']['median']:.0f}x at "
            f"initialisation) and the speeds rise layer by layer in "
            f"{100 * tr['ordered_fraction']['plateau']:.0f}% of the epochs; once it learns the gap "
            f"closes: last/first {g['after_learning_geomean']:.2f} from epoch {k} on, "
            f"{g['end']['median']:.2f} at the end."
        )
    else:
        out.append(
            f"The median training accuracy never reaches 0.5; last/first speed "
            f"{g['plateau_geomean']:.0f}x over the epochs after the first."
        )
    out.append(
        "Weights after training, ||W^l - W^l_0||_F / ||W^l_0||_F: "
        + ", ".join(f"W^{l + 1} {v:.2f}" for l, v in enumerate(ch))
        + f"; the first layer moved {f['weight_change_first_over_last']['median']:.2f} times "
        f"as far as the last, relative to its initial norm."
    )
    return out


def _plot(at_init, training, raw, seeds):
    fig = figure(20, 4.4)
    axes = fig.subplots(1, 4)
    colors = {(30, 30): "tab:blue", (30, 30, 30): "tab:orange", (30, 30, 30, 30): "tab:green"}

    ax = axes[0]
    for hidden in NETWORKS:
        for init, style in (("scaled", "-o"), ("plain", ":s")):
            q = at_init[init][_name(hidden)]["speed"]
            x = np.arange(1, len(hidden) + 1)
            ax.plot(
                x, q["median"], style, color=colors[hidden], ms=4, label=_name(hidden) if init == "scaled" else None
            )
            ax.fill_between(x, q["q25"], q["q75"], color=colors[hidden], alpha=0.15)
        ax.plot(np.arange(1, len(hidden) + 1), NIELSEN_MNIST[hidden], "x", color=colors[hidden], ms=8, mew=2)
    ax.plot([], [], "k-o", ms=4, label="weights N(0,1)/sqrt(n_in)")
    ax.plot([], [], "k:s", ms=4, label="weights N(0,1)")
    ax.plot([], [], "kx", ms=8, mew=2, label="Nielsen, MNIST, N(0,1)/sqrt(n_in)")
    ax.set_yscale("log")
    ax.set_xticks([1, 2, 3, 4])
    ax.set_xlabel("hidden layer")
    ax.set_ylabel("speed of learning ||dC/db^l||")
    ax.set_title(f"at initialisation: median, 25-75% of {seeds} networks")
    ax.legend(fontsize=7, loc="lower right")

    ax = axes[1]
    bins = np.geomspace(0.5, 20, 50)
    for init, color in (("scaled", "tab:green"), ("plain", "tab:red")):
        r = np.concatenate([(raw[(h, init)][:, 1:] / raw[(h, init)][:, :-1]).ravel() for h in NETWORKS])
        ax.hist(r, bins=bins, color=color, alpha=0.6, label=f"{INITS[init]}: median {np.median(r):.2f}")
    ax.axvspan(4, 6, color="0.85", zorder=0, label="Nielsen: about 4 to 6")
    ax.axvline(4, color="k", ls="--", lw=1, label="notes' one-neuron bound: 4")
    ax.axvline(1, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_xticks([0.5, 1, 2, 4, 6, 10, 20], ["0.5", "1", "2", "4", "6", "10", "20"])
    ax.set_xlabel("||dC/db^(l+1)|| / ||dC/db^l|| (every seed, layer, network)")
    ax.set_ylabel("count")
    ax.set_title("fall per layer toward the input")
    ax.legend(fontsize=7)

    if training:
        plot_training(axes[2], training, change_ax=axes[3])
    else:
        for ax in axes[2:]:
            ax.set_axis_off()
        axes[2].text(0.5, 0.5, "training skipped (epochs=0)", ha="center", transform=axes[2].transAxes)
    return fig
