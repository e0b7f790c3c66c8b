"""``gradcheck experiment NAME``: reproduce a published figure on real data, with a plot.

Every argument is checked before any work: an unknown NAME, ``--seeds 0``, an option that does
not apply to NAME, or an ``--out`` folder that cannot be written is an error naming the
argument, exit status 2.  Tables go to stdout, the progress bar to stderr.
"""

from __future__ import annotations

import argparse

from rich.console import Console

from ._console import console as wide_console

#: The experiments, in the order --help lists them (imported lazily: JAX loads with them).
NAMES = ("vanishing", "slowdown", "remedies")

#: Options that only some experiments take: option dest -> (flag, experiments).
_ONLY = {
    "epochs": ("--epochs", ("vanishing",)),
    "train_seeds": ("--train-seeds", ("vanishing",)),
    "lr": ("--lr", ("vanishing",)),
    "batch": ("--batch", ("vanishing",)),
    "depth": ("--depth", ("remedies",)),
}


def _int_at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text}")
    return value


def add_parser(sub) -> None:
    p = sub.add_parser(
        "experiment",
        help="reproduce a published figure on real data (vanishing, slowdown, remedies)",
        description="Reproduce a published measurement on scikit-learn's 8x8 digits, print its "
        "table and write NAME.png and NAME.json into --out.  vanishing: Nielsen's per-layer "
        "speed of learning (ch. 5), at initialisation and during training; slowdown: the one "
        "sigmoid neuron of ch. 3 under quadratic and cross-entropy cost; remedies: per-layer "
        "gradient norms across 50 layers for sigmoid, tanh, ReLU, He init, residual blocks and "
        "batch norm.",
    )
    p.add_argument("name", metavar="NAME", choices=NAMES, help="one of: " + ", ".join(NAMES))
    p.add_argument(
        "--seeds",
        type=_int_at_least(1),
        default=None,
        help="random networks (slowdown: random starting points); default: vanishing 200, slowdown 200, remedies 32",
    )
    p.add_argument(
        "--out", default="out/experiments", help="folder for NAME.png and NAME.json (default: out/experiments)"
    )
    p.add_argument(
        "--epochs",
        type=_int_at_least(0),
        default=None,
        help="vanishing: epochs of mini-batch SGD over the 1000 training images "
        "(default 500, as Nielsen; 0 skips training)",
    )
    p.add_argument("--train-seeds", type=_int_at_least(1), default=None, help="vanishing: networks trained (default 8)")
    p.add_argument(
        "--lr",
        type=_positive_float,
        default=None,
        help="vanishing: learning rate of the training (default 0.1, as Nielsen)",
    )
    p.add_argument("--batch", type=_int_at_least(1), default=None, help="vanishing: mini-batch size (default 10)")
    p.add_argument(
        "--depth", type=_int_at_least(2), default=None, help="remedies: hidden layers (default 50, at most 200)"
    )
    p.set_defaults(func=cmd_experiment)


def cmd_experiment(args) -> int:
    options = {}
    for dest, (flag, names) in _ONLY.items():
        value = getattr(args, dest)
        if value is None:
            continue
        if args.name not in names:
            raise ValueError(f"{flag} applies to {' and '.join(names)} only, not {args.name}")
        options[dest] = value

    from ..experiments import run
    from ..experiments._common import prepare_out

    try:
        out = prepare_out(args.out)
    except ValueError as e:  # name the flag, not the Python parameter
        raise ValueError(f"--{e}") from None

    result = run(args.name, args.seeds, out, console=Console(stderr=True), **options)
    # a pipe or a file gets rich's 80 columns by default: too narrow for these tables
    result.print(wide_console())
    return 0
