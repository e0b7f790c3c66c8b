"""The ``small`` group: the everyday small check against ``check_grads``, cold, in fresh processes.

Eight functions a user checks first (sigmoid, softplus, tanh, logsumexp of 5, softmax of 4,
``x sin y``, gelu, a layer norm of 8), each at order 2 on 100 points.  Each checker runs in a
fresh Python process of its own, as a test suite's first call does: ``gradcheck.check`` from the
call to its report (compile and SymPy included), ``check_grads(order=2, modes=("fwd", "rev"))``
looped over 100 points drawn from the same domain with a fixed seed (its compiles included).
The imports are timed apart and left out of both.  Reported: seconds, the ratio
gradcheck / check_grads per function, its median, the path gradcheck chose and why, the
verdicts, and how many points ``check_grads`` flagged on these correct functions.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from typing import Any

from ._timing import target

__all__ = ["SMALL_CASES", "bench_small"]

#: name -> (fn, reference, shapes, domain, dtype), as source text for the fresh process
SMALL_CASES: dict[str, tuple[str, str, str, str, str]] = {
    "sigmoid": ("jax.nn.sigmoid", "R.sigmoid_ref", "[()]", "(-10.0, 10.0)", "float32"),
    "softplus": ("jax.nn.softplus", "R.softplus_ref", "[()]", "(-20.0, 20.0)", "float64"),
    "tanh": ("jnp.tanh", "sp.tanh", "[()]", "(-5.0, 5.0)", "float32"),
    "logsumexp (5,)": ("jax.nn.logsumexp", "R.logsumexp_ref", "[(5,)]", "(-10.0, 10.0)", "float32"),
    "softmax (4,)": ("jax.nn.softmax", "R.softmax_ref", "[(4,)]", "(-10.0, 10.0)", "float64"),
    "x sin y": ("lambda x, y: x * jnp.sin(y)", "lambda x, y: x * sp.sin(y)", "[(), ()]", "(-10.0, 10.0)", "float64"),
    "gelu": ("lambda x: jax.nn.gelu(x, approximate=False)", "R.gelu_exact_ref", "[()]", "(-5.0, 5.0)", "float32"),
    "layer norm (8,)": ("layer_norm", "R.layer_norm_ref", "[(8,)]", "(-3.0, 3.0)", "float64"),
}
POINTS = 100

_SCRIPT = r"""
import json, sys, time
t0 = time.perf_counter()
import jax, jax.numpy as jnp, numpy as np, sympy as sp
import gradcheck
from gradcheck.models import references as R
from jax.test_util import check_grads
t_import = time.perf_counter() - t0

def layer_norm(x):
    m = jnp.mean(x)
    return (x - m) / jnp.sqrt(jnp.mean((x - m) ** 2) + 1e-5)

fn, ref, shapes, domain, dtype = %(fn)s, %(ref)s, %(shapes)s, %(domain)s, %(dtype)r
which, points = %(which)r, %(points)d
out = {"import_s": t_import}
if which == "gradcheck":
    t0 = time.perf_counter()
    r = gradcheck.check(fn, ref, shapes=shapes, domain=domain, order=2, dtype=dtype, max_examples=points)
    out.update(s=time.perf_counter() - t0, ok=bool(r.ok), path=r.path, truth=r.truth, points=r.points_checked)
else:
    jax.config.update("jax_enable_x64", dtype == "float64")
    rng = np.random.default_rng([0, 41])
    flagged = 0
    t0 = time.perf_counter()
    for _ in range(points):
        xs = tuple(np.asarray(rng.uniform(*domain, size=s), dtype) for s in shapes)
        try:
            check_grads(fn, xs, order=2, modes=("fwd", "rev"))
        except AssertionError:
            flagged += 1
    out.update(s=time.perf_counter() - t0, flagged=flagged, points=points)
print("SMALL " + json.dumps(out))
"""


def _fresh(name: str, which: str, points: int, timeout: float) -> dict[str, Any]:
    fn, ref, shapes, domain, dtype = SMALL_CASES[name]
    code = _SCRIPT % {
        "fn": fn,
        "ref": ref,
        "shapes": shapes,
        "domain": domain,
        "dtype": dtype,
        "which": which,
        "points": points,
    }
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=dict(os.environ)
    )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("SMALL ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(
            f"{which} on {name} in a fresh process failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
        )
    return json.loads(line[len("SMALL ") :])


def bench_small(
    quick: bool = False, points: int = POINTS, names: list[str] | None = None, timeout: float = 900.0
) -> dict[str, Any]:
    """The ``small`` group of :func:`gradcheck.bench.run` (see the module's docstring);
    ``quick``: sigmoid and the layer norm only."""
    names = names or (["sigmoid", "layer norm (8,)"] if quick else list(SMALL_CASES))
    rows = []
    for name in names:
        g = _fresh(name, "gradcheck", points, timeout)
        c = _fresh(name, "check_grads", points, timeout)
        rows.append(
            {
                "function": name,
                "dtype": SMALL_CASES[name][4],
                "gradcheck_s": g["s"],
                "gradcheck_ok": g["ok"],
                "gradcheck_points": g["points"],
                "path": g["path"],
                "truth": g["truth"],
                "check_grads_s": c["s"],
                "check_grads_points": c["points"],
                "check_grads_flagged": c["flagged"],
                "ratio": g["s"] / c["s"],
                "import_s": g["import_s"],
            }
        )
    ratios = [r["ratio"] for r in rows]
    median = statistics.median(ratios)
    targets = [
        target("small", "largest gradcheck / check_grads (cold, fresh processes)", max(ratios), "<=", 1.0),
        target("small", "median gradcheck / check_grads (cold, fresh processes)", median, "<=", 0.5),
        target("small", "false alarms of gradcheck.check", float(sum(not r["gradcheck_ok"] for r in rows)), "<=", 0.0),
    ]
    return {"order": 2, "points": points, "rows": rows, "median_ratio": median, "targets": targets}
