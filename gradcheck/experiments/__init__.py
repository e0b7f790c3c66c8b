"""Experiments that reproduce the published figures on real data, with plots.

    vanishing(seeds, out)   Nielsen ch. 5: per-layer speed of learning at init and in training
    slowdown(seeds, out)    Nielsen ch. 3: one sigmoid neuron, quadratic vs cross-entropy cost
    remedies(seeds, out)    per-layer gradient norms across 50 layers: sigmoid, tanh, ReLU,
                            ReLU + He init, residual blocks, batch norm
    run(name, seeds, out)   any of them by name (what ``gradcheck experiment NAME`` calls)
    train(**TRAINING)       the during-training record (speeds of learning, weight changes) that
                            the claim backprop.layer_speeds measures

Each returns a :class:`Result` (numbers, rich tables, findings in words) and, given ``out``,
writes ``out/NAME.png`` and ``out/NAME.json`` whole.  Data: scikit-learn's 8x8 digits.
"""

from __future__ import annotations

from ._common import Result as Result
from ._remedies import remedies as remedies
from ._slowdown import slowdown as slowdown
from ._training import SETTING as TRAINING, train as train
from ._vanishing import vanishing as vanishing

#: The experiments by name, in the order ``gradcheck experiment --help`` lists them.
EXPERIMENTS = {"vanishing": vanishing, "slowdown": slowdown, "remedies": remedies}


def run(name: str, seeds: int | None = None, out=None, *, console=None, **options) -> Result:
    """Run the experiment ``name`` (one of :data:`EXPERIMENTS`); ``seeds=None`` is its default."""
    if not isinstance(name, str) or name not in EXPERIMENTS:
        raise ValueError(f"name: expected one of {', '.join(EXPERIMENTS)}, got {name!r}")
    fn = EXPERIMENTS[name]
    if seeds is not None:
        options["seeds"] = seeds
    return fn(out=out, console=console, **options)


__all__ = ["EXPERIMENTS", "Result", "TRAINING", "remedies", "run", "slowdown", "train", "vanishing"]
