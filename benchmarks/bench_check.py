"""Seconds per checked point, and per check by input size: ``gradcheck.check`` against ``check_grads``.

    python benchmarks/bench_check.py [--quick] [--sizes 4,16,64] [--no-sweep] [--no-small] [--json FILE]

Throughput: the same functions go to both checkers (sigmoid, softmax, log_softmax, and a
``custom_jvp`` sigmoid whose rule is 10% wrong for z > 2), in float64, first derivatives.
``gradcheck.check`` is timed cold, from the call to its report, compile included, on many
points; ``check_grads`` once per point, as a test suite calls it.  The verdict columns show
that the broken rule is caught by both and the correct functions passed by both.

Size sweep: ``jax.nn.logsumexp`` (order 2) and a layer norm (order 1) at n = 4, 16, 64, 256,
1,024, 4,096 (``--quick``: 4, 16, 64; the layer norm stops at 1,024), 100 points each, float64:
seconds per check, cold (first call at that size, compile and SymPy included) and warm, for
``gradcheck.check`` and for ``check_grads`` on 100 points, the fitted growth exponent, and a
small check (sigmoid on (5,), order 2) timed in a fresh process.
The same measurement is the ``check`` group of ``gradcheck bench``.

The small check (``--no-small`` leaves it out): eight everyday functions (sigmoid f32, softplus
f64, tanh f32, logsumexp of 5 f32, softmax of 4 f64, x sin y f64, gelu f32, a layer norm of 8
f64) at order 2 on 100 points, ``gradcheck.check`` and ``check_grads(order=2)`` looped over 100
points of the same domain, each cold in a fresh process; the ratio per function and its median
(``gradcheck bench --only small``).
"""

import argparse
import sys

from rich.console import Console
from rich.table import Table

from gradcheck import bench
from gradcheck.cli._bench import _sizes  # the same --sizes parser as gradcheck bench


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--quick", action="store_true", help="fewer points and sizes 4, 16, 64 (about a minute on 2 CPU cores)"
    )
    p.add_argument("--sizes", type=_sizes, metavar="N,N,...", help="input sizes of the size sweep")
    p.add_argument("--no-sweep", action="store_true", help="the throughput table only")
    p.add_argument("--no-small", action="store_true", help="leave out the small check in fresh processes")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = p.parse_args(argv)
    if args.no_sweep:
        r = bench.bench_check(quick=args.quick)
    else:  # the check group of gradcheck bench: throughput and the size sweep
        r = bench.bench_check_group(quick=args.quick, sizes=args.sizes)
    result = {**bench.environment(), "quick": args.quick, "groups": {"check": r}}
    if not args.no_small:
        result["groups"]["small"] = bench.bench_small(quick=args.quick)
    t = Table(
        title=f"seconds per checked point, {r['dtype']}, order {r['order']} "
        f"(gradcheck.check cold, compile included; check_grads once per point)"
    )
    for col in (
        "function",
        "check points",
        "check s/point",
        "check verdict",
        "check_grads points",
        "check_grads s/point",
        "check_grads verdict",
        "ratio",
    ):
        t.add_column(col, justify="left" if "verdict" in col or col == "function" else "right")
    for row in r["rows"]:
        cg = (
            f"flagged {row['check_grads_flagged']} of {row['check_grads_points']}"
            if row["check_grads_flagged"]
            else "pass"
        )
        t.add_row(
            row["function"],
            str(row["check_points"]),
            f"{row['check_s'] / row['check_points']:.2e}",
            "pass" if row["check_ok"] else "FAIL (" + ", ".join(sorted(set(row["check_failures"]))) + ")",
            str(row["check_grads_points"]),
            f"{row['check_grads_s'] / row['check_grads_points']:.2e}",
            cg,
            f"{row['speedup']:.0f}x",
        )
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(
        f"{result['device']['platform']} ({result['device']['kind']}), jax {result['jax_version']}, "
        f"{result['cpu_count']} CPU(s), load average {result['load_average'][0]:.1f} at start"
    )
    console.print(t)
    console.print(
        f"overall: gradcheck.check {r['check_points_per_s']:.0f} points/s, check_grads "
        f"{r['check_grads_points_per_s']:.0f} points/s, ratio "
        f"{r['check_points_per_s'] / r['check_grads_points_per_s']:.0f}x"
    )
    if "size_sweep" in r:
        for renderable in bench.size_sweep_renderables(r["size_sweep"]):
            console.print(renderable)
    if "small" in result["groups"]:
        for renderable in bench.small_table(result["groups"]["small"]):
            console.print(renderable)
        for tg in result["groups"]["small"]["targets"]:
            console.print(
                f"target {tg['name']}: {tg['ratio']:.3g} {tg['op']} {tg['threshold']:g}: {'met' if tg['met'] else 'MISSED'}"
            )
    if args.json:
        bench.write_json(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
