"""``gradcheck bench``: jitted closed forms against autodiff, on whatever device JAX sees."""

from __future__ import annotations

import os


def add_parser(sub) -> None:
    from ..bench import GROUPS

    p = sub.add_parser(
        "bench",
        help="time closed forms against autodiff (compile time apart), print a table, write JSON",
        description="Jitted benchmarks: softmax Jacobian, the chain's dC/db1, verification "
        "throughput and the cost of a check by input size, symbolic cost.  Compile time is "
        "measured apart from the steady state (block_until_ready, warm-up, median of repeats).",
    )
    p.add_argument(
        "--only",
        action="append",
        choices=sorted(GROUPS),
        metavar="NAME",
        help=f"run only this group (repeatable): {', '.join(GROUPS)} (models and small only when named)",
    )
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    p.add_argument(
        "--quick", action="store_true", help="smaller sizes and fewer repeats: about a minute on 2 CPU cores"
    )
    p.add_argument(
        "--sizes",
        type=_sizes,
        metavar="N,N,...",
        help="input sizes of the check group's size sweep (default 4,16,64,256,1024,4096; --quick 4,16,64)",
    )
    p.set_defaults(func=cmd_bench)


def _sizes(text: str) -> tuple[int, ...]:
    import argparse

    try:
        sizes = tuple(int(s.replace("_", "")) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return sizes


def cmd_bench(args) -> int:
    from rich.console import Console

    from .. import bench
    from ._console import console as wide_console

    if args.json:  # a bad path fails now, not after minutes of benchmarks
        folder = os.path.dirname(os.path.abspath(args.json))
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"--json: the folder {folder!r} does not exist")
        if os.path.isdir(args.json):
            raise ValueError(f"--json: expected a file name, got the folder {args.json!r}")
    # a pipe or a file gets wide tables rather than rich's 80 columns
    console = wide_console()
    err = Console(stderr=True)
    result = bench.run(
        args.only,
        quick=args.quick,
        sizes=getattr(args, "sizes", None),
        progress=lambda name: err.print(f"[dim]bench: {name} ...[/dim]"),
    )
    dev = result["device"]
    console.print(
        f"gradcheck bench{' --quick' if args.quick else ''}: {dev['platform']} "
        f"({dev['kind']}, {dev['count']} device(s)), jax {result['jax_version']}, "
        f"{result['cpu_count']} CPU(s), load average {result['load_average'][0]:.1f} at start, "
        f"{result['seconds']:.0f} s"
    )
    for table in bench.tables(result):
        console.print(table)
    if args.json:
        bench.write_json(result, args.json)
        console.print(f"wrote {args.json}")
    return 0
