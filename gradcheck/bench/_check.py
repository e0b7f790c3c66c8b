"""The ``check`` group: verification throughput, points per second of :func:`gradcheck.check`
(compile included) against :func:`jax.test_util.check_grads` called once per point, on the same
functions, and the verdicts of both (:func:`gradcheck.bench.cases.check_cases`: a broken
``custom_jvp`` among them); with the size sweep of :mod:`gradcheck.bench._sizes`."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from jax.test_util import check_grads

from .._check import check
from .._x64 import float64
from ._sizes import bench_check_sizes
from ._timing import target
from .cases import check_cases

__all__ = ["bench_check", "bench_check_group"]


def bench_check(
    quick: bool = False, check_points: int | None = None, grads_points: int | None = None, seed: int = 0
) -> dict[str, Any]:
    """Points per second of ``gradcheck.check`` vs ``check_grads`` once per point (float64, order 1).

    ``gradcheck.check`` is timed from the call to the report, cold (its compile included) on
    ``check_points`` points; ``check_grads`` on ``grads_points`` points, one call each, as a
    test suite calls it.  Each checker's verdict on each function is recorded: the broken rule
    must be caught by both, the correct functions passed by both.
    """
    check_points = check_points or (1_000 if quick else 100_000)
    grads_points = grads_points or (20 if quick else 1_000)
    cases = check_cases()
    if quick:  # one correct function and the broken one
        cases = [c for c in cases if c["name"] == "sigmoid" or c["broken"]]
    rows = []
    for i, case in enumerate(cases):
        t0 = time.perf_counter()
        report = check(
            case["fn"], case["ref"], shapes=[case["shape"]], domain=case["domain"], max_examples=check_points, seed=seed
        )
        t_check = time.perf_counter() - t0
        pts = report.points_checked
        rng = np.random.default_rng([seed, i])
        lo, hi = case["domain"]
        xs = rng.uniform(lo, hi, size=(grads_points, *case["shape"]))
        flagged = 0
        with float64():
            t0 = time.perf_counter()
            for x in xs:
                try:
                    check_grads(case["fn"], (x,), order=1, modes=("fwd", "rev"))
                except AssertionError:
                    flagged += 1
            t_grads = time.perf_counter() - t0
        rows.append(
            {
                "function": case["name"],
                "broken": case["broken"],
                "check_points": pts,
                "check_s": t_check,
                "check_points_per_s": pts / t_check,
                "check_ok": bool(report.ok),
                "check_failures": [f.kind for f in report.failures],
                "check_grads_points": grads_points,
                "check_grads_s": t_grads,
                "check_grads_points_per_s": grads_points / t_grads,
                "check_grads_flagged": flagged,
                "speedup": (pts / t_check) / (grads_points / t_grads),
                "same_verdict": bool(report.ok) == (flagged == 0) == (not case["broken"]),
            }
        )
    total_check = sum(r["check_points"] for r in rows) / sum(r["check_s"] for r in rows)
    total_grads = sum(r["check_grads_points"] for r in rows) / sum(r["check_grads_s"] for r in rows)
    targets = [
        target(
            "check", "check points/s / check_grads points/s (compile included)", total_check / total_grads, ">=", 100.0
        ),
        target(
            "check",
            "share of functions with the same verdict from both (broken one caught)",
            float(np.mean([r["same_verdict"] for r in rows])),
            ">=",
            1.0,
        ),
    ]
    return {
        "dtype": "float64",
        "order": 1,
        "rows": rows,
        "check_points_per_s": total_check,
        "check_grads_points_per_s": total_grads,
        "targets": targets,
    }


def bench_check_group(quick: bool = False, sizes: Sequence[int] | None = None) -> dict[str, Any]:
    """The ``check`` group of :func:`run`: :func:`bench_check` and :func:`bench_check_sizes`."""
    result = bench_check(quick=quick)
    sweep = bench_check_sizes(quick=quick, sizes=sizes)
    result["size_sweep"] = sweep
    result["targets"] = result["targets"] + sweep["targets"]
    return result
