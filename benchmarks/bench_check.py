"""Seconds per checked point: ``gradcheck.check`` against ``jax.test_util.check_grads``.

    python benchmarks/bench_check.py [--quick] [--json FILE]

The same functions go to both checkers (sigmoid, softmax, log_softmax, and a ``custom_jvp``
sigmoid whose rule is 10% wrong for z > 2), in float64, first derivatives.
``gradcheck.check`` is timed cold, from the call to its report, compile included, on many
points; ``check_grads`` once per point, as a test suite calls it.  The verdict columns show
that the broken rule is caught by both and the correct functions passed by both.
The same measurement is the ``check`` group of ``gradcheck bench``.
"""

import argparse
import sys

from rich.console import Console
from rich.table import Table

from gradcheck import bench


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer points (about 20 s on 2 CPU cores)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = p.parse_args(argv)
    result = {**bench.environment(), "quick": args.quick, "groups": {"check": bench.bench_check(quick=args.quick)}}
    r = result["groups"]["check"]
    t = Table(title=f"seconds per checked point, {r['dtype']}, order {r['order']} "
                    f"(gradcheck.check cold, compile included; check_grads once per point)")
    for col in ("function", "check points", "check s/point", "check verdict",
                "check_grads points", "check_grads s/point", "check_grads verdict", "ratio"):
        t.add_column(col, justify="left" if "verdict" in col or col == "function" else "right")
    for row in r["rows"]:
        cg = "flagged %d of %d" % (row["check_grads_flagged"], row["check_grads_points"]) \
            if row["check_grads_flagged"] else "pass"
        t.add_row(row["function"], str(row["check_points"]), f"{row['check_s'] / row['check_points']:.2e}",
                  "pass" if row["check_ok"] else "FAIL (" + ", ".join(sorted(set(row["check_failures"]))) + ")",
                  str(row["check_grads_points"]), f"{row['check_grads_s'] / row['check_grads_points']:.2e}",
                  cg, f"{row['speedup']:.0f}x")
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(t)
    console.print(f"overall: gradcheck.check {r['check_points_per_s']:.0f} points/s, check_grads "
                  f"{r['check_grads_points_per_s']:.0f} points/s, ratio "
                  f"{r['check_points_per_s'] / r['check_grads_points_per_s']:.0f}x")
    if args.json:
        bench.write_json(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
