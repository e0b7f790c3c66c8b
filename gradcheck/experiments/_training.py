"""Training with mini-batch stochastic gradient descent, measuring each layer's speed of learning.

Nielsen's chapter 5 watches the speed of learning ``||dC/db^l||`` of every hidden layer while a
[784, 30, 30, 30, 30, 10] sigmoid network trains on 1,000 MNIST images for 500 epochs (his
``fig/generate_gradient.py``: ``net.SGD(td, 1, 1000, 0.1, lmbda=5.0)`` once per epoch, learning
rate 0.1; the mini-batch there is the whole 1,000 images).  Here the same network on
scikit-learn's 8x8 digits ([64, 30, 30, 30, 30, 10]), the first 1,000 images, learning rate 0.1,
500 epochs, with mini-batches of 10 (his ``network2`` default, so that the network learns) and
no L2 term (weight decay would move every layer's weights toward zero and blur the question of
how far each layer moved from its initial values).

Measured at the start of every epoch and after the last, per seed:

* ``speed``: ``||dC/db^l||`` for each hidden layer l, with C averaged over all 1,000 training
  images (as Nielsen's ``get_average_gradient``);
* ``change``: ``||W^l - W^l_0||_F / ||W^l_0||_F`` for each of the five weight matrices;
* the training cost and accuracy; at the end, the accuracy on the 797 held-out images.

Initialisation: weights N(0, 1)/sqrt(n_in), biases N(0, 1) (Nielsen's default), network *i* the
same network as seed *i* of the ``vanishing`` measurement at initialisation.  The order of the
mini-batches of seed *i* comes from ``fold_in(fold_in(key(1), i), epoch)``.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._x64 import float64
from ._common import (
    cross_entropy,
    digits,
    init_network,
    network_cost,
    network_sizes,
    pre_activations,
    progress,
    quantiles,
    sweep,
)

#: The measured setting (the README figure and the claim ``backprop.layer_speeds``).
SETTING = {"hidden": (30, 30, 30, 30), "seeds": 8, "epochs": 500, "lr": 0.1, "batch": 10}

#: A few seconds: what the tests run.  Long enough to leave the plateau of the first epochs.
QUICK = {"hidden": (30, 30, 30, 30), "seeds": 2, "epochs": 150, "lr": 0.1, "batch": 10}

#: Nielsen's own run (fig/generate_gradient.py, MNIST), for the record.
NIELSEN = {
    "network": [784, 30, 30, 30, 30, 10],
    "training_images": 1000,
    "epochs": 500,
    "lr": 0.1,
    "batch": 1000,
    "l2_lambda": 5.0,
    "speed_at_init": [0.003, 0.017, 0.070, 0.285],
}

_EPOCH_BLOCK = 50  # epochs per jitted block (one compiled program, a progress bar that moves)
_SHUFFLE_SEED = 1


@functools.cache
def _train_init(hidden):
    """vmapped seed -> the flat parameters (W..., b...) of network ``seed``, N(0, 1)/sqrt(n_in)
    weights: the networks of ``vanishing``'s measurement at initialisation."""

    def one(seed):
        Ws, bs = init_network(seed, hidden, jnp.ones(()))
        return (*Ws, *bs)

    return jax.vmap(one)


def _measure(Ws, bs, W0, x, y, labels):
    gb = jax.grad(network_cost, argnums=1)(Ws, bs, x, y)
    speed = jnp.stack([jnp.linalg.norm(g) for g in gb[:-1]])
    change = jnp.stack([jnp.linalg.norm(W - V) / jnp.linalg.norm(V) for W, V in zip(Ws, W0)])
    out = pre_activations(Ws, bs, x)[-1]
    acc = jnp.mean((jnp.argmax(out, -1) == labels).astype(out.dtype))
    return speed, change, cross_entropy(out, y), acc


@functools.cache
def _block(hidden, lr, batch, epochs):
    """vmapped (seed, first epoch, W0..., W..., b...) -> (W..., b..., per-epoch measurements)."""
    d = digits()
    x, y, labels = jnp.asarray(d.x), jnp.asarray(d.y), jnp.asarray(d.labels)
    n = x.shape[0]
    nb = n // batch
    L = len(hidden) + 1

    def one(seed, start, *flat):
        W0, Ws, bs = list(flat[:L]), list(flat[L : 2 * L]), list(flat[2 * L :])
        key = jax.random.fold_in(jax.random.key(_SHUFFLE_SEED), seed)

        def epoch(p, e):
            Ws, bs = p
            m = _measure(Ws, bs, W0, x, y, labels)
            order = jax.random.permutation(jax.random.fold_in(key, e), n)[: nb * batch]

            def step(p, idx):
                Ws, bs = p
                gW, gb = jax.grad(network_cost, argnums=(0, 1))(Ws, bs, x[idx], y[idx])
                return ([W - lr * g for W, g in zip(Ws, gW)], [b - lr * g for b, g in zip(bs, gb)]), None

            p, _ = jax.lax.scan(step, (Ws, bs), order.reshape(nb, batch))
            return p, m

        (Ws, bs), ms = jax.lax.scan(epoch, (Ws, bs), start + jnp.arange(epochs))
        return (*Ws, *bs, *ms)

    return jax.vmap(one)


@functools.cache
def _final(hidden):
    d = digits()
    held = digits(1000, 1797)
    L = len(hidden) + 1

    def one(*flat):
        W0, Ws, bs = list(flat[:L]), list(flat[L : 2 * L]), list(flat[2 * L :])
        m = _measure(Ws, bs, W0, jnp.asarray(d.x), jnp.asarray(d.y), jnp.asarray(d.labels))
        out = pre_activations(Ws, bs, jnp.asarray(held.x))[-1]
        h = jnp.mean((jnp.argmax(out, -1) == jnp.asarray(held.labels)).astype(out.dtype))
        return (*m, h)

    return jax.vmap(one)


_CACHE: dict[tuple, dict[str, Any]] = {}


def train(
    hidden=SETTING["hidden"],
    seeds=SETTING["seeds"],
    epochs=SETTING["epochs"],
    lr=SETTING["lr"],
    batch=SETTING["batch"],
    console=None,
) -> dict[str, Any]:
    """Train ``seeds`` networks; return the record (every number, JSON-ready).

    Computed once per setting in a process (the claim ``backprop.layer_speeds`` and the report's
    figure share it); ``console`` only shows progress.
    """
    key = (tuple(hidden), int(seeds), int(epochs), float(lr), int(batch))
    if key not in _CACHE:
        _CACHE[key] = _train(*key, console=console)
    return _CACHE[key]


def _train(hidden, seeds, epochs, lr, batch, console=None) -> dict[str, Any]:
    L = len(hidden) + 1
    rows = np.arange(seeds, dtype=np.int32)
    with float64(), progress(console) as bar:
        task = bar.add_task(f"training {seeds} networks, mini-batch SGD", total=epochs)
        init, _ = sweep(_train_init(hidden), [rows], block=seeds)
        W0, params = list(init[:L]), list(init)
        parts: list[list[np.ndarray]] = [[], [], [], []]
        done = 0
        while done < epochs:
            k = min(_EPOCH_BLOCK, epochs - done)
            res, _ = sweep(
                _block(hidden, lr, batch, k), [rows, np.full(seeds, done, np.int32), *W0, *params], block=seeds
            )
            params = list(res[: 2 * L])
            for p, r in zip(parts, res[2 * L :]):
                p.append(r)
            done += k
            bar.advance(task, k)
        last, _ = sweep(_final(hidden), [*W0, *params], block=seeds)
    # (seeds, epochs + 1, ...): the state at the start of every epoch, then after the last
    speed, change, cost, acc = (
        np.concatenate([*p, last[i][:, None]], axis=1) if p else last[i][:, None] for i, p in enumerate(parts)
    )
    heldout = last[4]
    return _record(hidden, seeds, epochs, lr, batch, speed, change, cost, acc, heldout)


def _geomean(a, axis=None):
    return np.exp(np.mean(np.log(a), axis=axis))


def _record(hidden, seeds, epochs, lr, batch, speed, change, cost, acc, heldout) -> dict[str, Any]:
    gap = speed[:, :, -1] / speed[:, :, 0]  # last hidden layer over the first
    ordered = np.all(np.diff(speed, axis=2) > 0, axis=2)  # speeds rise layer by layer
    med_acc = np.median(acc, axis=0)
    learned = np.nonzero(med_acc >= 0.5)[0]
    first_learned = int(learned[0]) if learned.size else None
    E = epochs + 1
    plateau = slice(1, max(first_learned or E, 2))  # after epoch 0, before it learns
    after = slice(first_learned, E) if first_learned is not None else slice(E, E)
    end = change[:, -1, :]
    return {
        "network": list(network_sizes(hidden)),
        "method": f"mini-batch stochastic gradient descent, batch {batch}, learning rate {lr:g}, "
        f"{epochs} epochs, no L2 term, shuffled every epoch",
        "training_examples": 1000,
        "heldout_examples": 797,
        "cost": "per-unit cross-entropy of sigmoid outputs",
        "init": "weights N(0,1)/sqrt(n_in), biases N(0,1)",
        "seeds": seeds,
        "epochs": epochs,
        "lr": lr,
        "batch": batch,
        "measured_at": "start of every epoch and after the last (epochs + 1 points)",
        "speed_median": np.median(speed, axis=0).tolist(),  # (E, H)
        "speed_q25": np.quantile(speed, 0.25, axis=0).tolist(),
        "speed_q75": np.quantile(speed, 0.75, axis=0).tolist(),
        "change_median": np.median(change, axis=0).tolist(),  # (E, L)
        "change_q25": np.quantile(change, 0.25, axis=0).tolist(),
        "change_q75": np.quantile(change, 0.75, axis=0).tolist(),
        "cost_median": np.median(cost, axis=0).tolist(),
        "train_accuracy_median": med_acc.tolist(),
        "first_epoch_median_train_accuracy_above_half": first_learned,
        "gap_last_over_first": {
            "at_init": quantiles(gap[:, 0]),
            "plateau_geomean": float(_geomean(gap[:, plateau])) if plateau.stop > 1 else None,
            "after_learning_geomean": float(_geomean(gap[:, after])) if first_learned is not None else None,
            "end": quantiles(gap[:, -1]),
        },
        "ordered_fraction": {
            "plateau": float(np.mean(ordered[:, plateau])) if plateau.stop > 1 else None,
            "after_learning": float(np.mean(ordered[:, after])) if first_learned is not None else None,
        },
        "final": {
            "train_accuracy": acc[:, -1].tolist(),
            "heldout_accuracy": heldout.tolist(),
            "heldout_accuracy_median": float(np.median(heldout)),
            "weight_change": quantiles(end),  # per weight matrix
            "weight_change_first_over_last": quantiles(end[:, 0] / end[:, -1]),
            "speed": quantiles(speed[:, -1, :]),
        },
        "nielsen": NIELSEN,
    }
