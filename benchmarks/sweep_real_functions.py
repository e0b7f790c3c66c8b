"""Sweep gradcheck over real, unmodified functions of jax.numpy, jax.scipy.special and jax.nn.

Each function is checked at order 2 (values, first and second derivatives in every mode) in
float32 and in float64 against a SymPy reference written here from its textbook closed form
(special functions through SymPy's own: gamma, loggamma, polygamma, erf, besseli, Ei, ...,
which gradcheck evaluates with SciPy/mpmath, never with JAX).  A function with a fixed integer
or parameter argument (``polygamma(1, x)``, ``expn(2, x)``) is called as JAX defines it, only
that argument is held fixed.

    python benchmarks/sweep_real_functions.py                      # everything, markdown table
    python benchmarks/sweep_real_functions.py --only tanh,gammaln --examples 50
    python benchmarks/sweep_real_functions.py --json /tmp/sweep.json
    python benchmarks/sweep_real_functions.py --only erfinv --accuracy erfinv

An exception raised by ``gradcheck.check`` is recorded as ``error: <type>: <first line>``,
never hidden: it is a bug of the checker (or a JAX rule that does not exist) to report.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
import traceback

import jax
import jax.nn as jnn
import jax.numpy as jnp
import jax.scipy.special as jss
import sympy as sp

import gradcheck
from gradcheck.models.references import (
    gelu_exact_ref,
    log_softmax_ref as log_softmax,
    logsumexp_ref as logsumexp,
    relu_ref,
    sigmoid_ref as sigmoid,
    softmax_ref as softmax,
    softplus_ref as softplus,
)

S = [()]  # one scalar argument
S2 = [(), ()]  # two scalar arguments
V5 = [(5,)]  # a vector of 5 logits

SQ2 = sp.sqrt(2)
SELU_ALPHA = sp.Float("1.6732632423543772848170429916717", 40)
SELU_SCALE = sp.Float("1.0507009873554804934193349852946", 40)


def relu6(x):
    return sp.Min(sp.Max(x, 0), 6)


def vec(f):
    """A reference on an n x 1 Matrix, entry by entry."""
    return lambda x: x.applyfunc(f)


def standardize(x):
    n = len(x)
    m = sum(x) / n
    var = sum((v - m) ** 2 for v in x) / n
    return x.applyfunc(lambda v: (v - m) / sp.sqrt(var + sp.Rational(1, 100000)))


def glu(x):
    h = len(x) // 2
    return sp.Matrix([x[i] * sigmoid(x[i + h]) for i in range(h)])


def betainc_2_3(x):
    # I_x(2, 3) = sum_{j=2}^{4} C(4, j) x^j (1 - x)^(4 - j)
    return sum(sp.binomial(4, j) * x**j * (1 - x) ** (4 - j) for j in range(2, 5))


# name -> (callable, SymPy reference, shapes, domain)
FUNCTIONS: dict[str, tuple] = {
    # ---------------------------------------------------------------- jax.numpy
    "jnp.exp": (jnp.exp, sp.exp, S, (-50.0, 50.0)),
    "jnp.exp2": (jnp.exp2, lambda x: 2**x, S, (-100.0, 100.0)),
    "jnp.expm1": (jnp.expm1, lambda x: sp.exp(x) - 1, S, (-50.0, 50.0)),
    "jnp.log": (jnp.log, sp.log, S, (1e-3, 1000.0)),
    "jnp.log2": (jnp.log2, lambda x: sp.log(x) / sp.log(2), S, (1e-3, 1000.0)),
    "jnp.log10": (jnp.log10, lambda x: sp.log(x) / sp.log(10), S, (1e-3, 1000.0)),
    "jnp.log1p": (jnp.log1p, lambda x: sp.log(1 + x), S, (-0.99, 1000.0)),
    "jnp.sqrt": (jnp.sqrt, sp.sqrt, S, (1e-3, 1000.0)),
    "jnp.cbrt": (jnp.cbrt, lambda x: sp.sign(x) * sp.Abs(x) ** sp.Rational(1, 3), S, (-1000.0, 1000.0)),
    "jnp.reciprocal": (jnp.reciprocal, lambda x: 1 / x, S, (0.01, 1000.0)),
    "jnp.square": (jnp.square, lambda x: x**2, S, (-1000.0, 1000.0)),
    "jnp.sin": (jnp.sin, sp.sin, S, (-100.0, 100.0)),
    "jnp.cos": (jnp.cos, sp.cos, S, (-100.0, 100.0)),
    "jnp.tan": (jnp.tan, sp.tan, S, (-1.5, 1.5)),
    "jnp.arcsin": (jnp.arcsin, sp.asin, S, (-0.99, 0.99)),
    "jnp.arccos": (jnp.arccos, sp.acos, S, (-0.99, 0.99)),
    "jnp.arctan": (jnp.arctan, sp.atan, S, (-1000.0, 1000.0)),
    "jnp.sinh": (jnp.sinh, sp.sinh, S, (-50.0, 50.0)),
    "jnp.cosh": (jnp.cosh, sp.cosh, S, (-50.0, 50.0)),
    "jnp.tanh": (jnp.tanh, sp.tanh, S, (-50.0, 50.0)),
    "jnp.arcsinh": (jnp.arcsinh, sp.asinh, S, (-1000.0, 1000.0)),
    "jnp.arccosh": (jnp.arccosh, sp.acosh, S, (1.01, 1000.0)),
    "jnp.arctanh": (jnp.arctanh, sp.atanh, S, (-0.99, 0.99)),
    "jnp.sinc": (jnp.sinc, lambda x: sp.sinc(sp.pi * x), S, (-20.0, 20.0)),
    "jnp.i0": (jnp.i0, lambda x: sp.besseli(0, x), S, (-50.0, 50.0)),
    "jnp.hypot": (jnp.hypot, lambda x, y: sp.sqrt(x**2 + y**2), S2, (-1000.0, 1000.0)),
    "jnp.arctan2": (jnp.arctan2, lambda y, x: sp.atan2(y, x), S2, (-1000.0, 1000.0)),
    "jnp.logaddexp": (jnp.logaddexp, lambda x, y: sp.log(sp.exp(x) + sp.exp(y)), S2, (-1000.0, 1000.0)),
    "jnp.logaddexp2": (jnp.logaddexp2, lambda x, y: sp.log(2**x + 2**y) / sp.log(2), S2, (-1000.0, 1000.0)),
    "jnp.power": (jnp.power, lambda x, y: x**y, S2, [(0.01, 100.0), (-5.0, 5.0)]),
    # ---------------------------------------------------------------- jax.scipy.special
    "jss.gamma": (jss.gamma, sp.gamma, S, (0.01, 50.0)),
    "jss.gammaln": (jss.gammaln, sp.loggamma, S, (0.01, 1000.0)),
    "jss.loggamma": (jss.loggamma, sp.loggamma, S, (0.01, 1000.0)),
    "jss.digamma": (jss.digamma, sp.digamma, S, (0.01, 50.0)),
    "jss.polygamma[n=1]": (lambda x: jss.polygamma(1, x), lambda x: sp.polygamma(1, x), S, (0.01, 50.0)),
    "jss.beta": (jss.beta, lambda a, b: sp.gamma(a) * sp.gamma(b) / sp.gamma(a + b), S2, (0.1, 20.0)),
    "jss.betaln": (jss.betaln, lambda a, b: sp.loggamma(a) + sp.loggamma(b) - sp.loggamma(a + b), S2, (0.01, 50.0)),
    "jss.poch": (jss.poch, lambda z, m: sp.gamma(z + m) / sp.gamma(z), S2, (0.1, 20.0)),
    "jss.gammainc": (jss.gammainc, lambda a, x: sp.lowergamma(a, x) / sp.gamma(a), S2, [(0.1, 20.0), (0.0, 50.0)]),
    "jss.gammaincc": (jss.gammaincc, lambda a, x: sp.uppergamma(a, x) / sp.gamma(a), S2, [(0.1, 20.0), (0.0, 50.0)]),
    # the same away from x = 0 (there gradcheck's numerical d2/(da dx) steps x below 0, see the docstring)
    "jss.gammainc[x>=0.01]": (
        jss.gammainc,
        lambda a, x: sp.lowergamma(a, x) / sp.gamma(a),
        S2,
        [(0.1, 20.0), (0.01, 50.0)],
    ),
    "jss.gammaincc[x>=0.01]": (
        jss.gammaincc,
        lambda a, x: sp.uppergamma(a, x) / sp.gamma(a),
        S2,
        [(0.1, 20.0), (0.01, 50.0)],
    ),
    "jss.betainc[a=2;b=3]": (lambda x: jss.betainc(2.0, 3.0, x), betainc_2_3, S, (0.0, 1.0)),
    "jss.zeta[q=2]": (lambda s: jss.zeta(s, 2.0), lambda s: sp.zeta(s, 2), S, (1.1, 50.0)),
    "jss.zeta[s=3]": (lambda q: jss.zeta(3.0, q), lambda q: sp.zeta(3, q), S, (0.01, 100.0)),
    "jss.erf": (jss.erf, sp.erf, S, (-50.0, 50.0)),
    "jss.erfc": (jss.erfc, sp.erfc, S, (-50.0, 50.0)),
    "jss.erfinv": (jss.erfinv, sp.erfinv, S, (-0.999, 0.999)),
    "jss.erfcx": (jss.erfcx, lambda x: sp.exp(x**2) * sp.erfc(x), S, (-5.0, 100.0)),
    "jss.dawsn": (jss.dawsn, lambda x: sp.sqrt(sp.pi) / 2 * sp.exp(-(x**2)) * sp.erfi(x), S, (-20.0, 20.0)),
    "jss.ndtr": (jss.ndtr, lambda x: sp.erfc(-x / SQ2) / 2, S, (-30.0, 30.0)),
    "jss.ndtri": (jss.ndtri, lambda p: -SQ2 * sp.erfcinv(2 * p), S, (1e-3, 1 - 1e-3)),
    "jss.log_ndtr": (jss.log_ndtr, lambda x: sp.log(sp.erfc(-x / SQ2) / 2), S, (-100.0, 30.0)),
    "jss.i0": (jss.i0, lambda x: sp.besseli(0, x), S, (-50.0, 50.0)),
    "jss.i0e": (jss.i0e, lambda x: sp.exp(-sp.Abs(x)) * sp.besseli(0, x), S, (-1000.0, 1000.0)),
    "jss.i1": (jss.i1, lambda x: sp.besseli(1, x), S, (-50.0, 50.0)),
    "jss.i1e": (jss.i1e, lambda x: sp.exp(-sp.Abs(x)) * sp.besseli(1, x), S, (-1000.0, 1000.0)),
    "jss.expi": (jss.expi, sp.Ei, S, (-50.0, 50.0)),
    "jss.expi[x>=0.01]": (jss.expi, sp.Ei, S, (0.01, 50.0)),  # away from the hang (SKIPPED)
    "jss.exp1": (jss.exp1, lambda x: sp.expint(1, x), S, (0.01, 100.0)),
    "jss.expn[n=2]": (lambda x: jss.expn(2, x), lambda x: sp.expint(2, x), S, (0.01, 100.0)),
    "jss.sici": (jss.sici, lambda x: (sp.Si(x), sp.Ci(x)), S, (0.01, 50.0)),
    "jss.fresnel": (jss.fresnel, lambda x: (sp.fresnels(x), sp.fresnelc(x)), S, (-10.0, 10.0)),
    "jss.spence": (jss.spence, lambda x: sp.polylog(2, 1 - x), S, (0.0, 100.0)),
    "jss.expit": (jss.expit, sigmoid, S, (-100.0, 100.0)),
    "jss.logit": (jss.logit, lambda p: sp.log(p / (1 - p)), S, (1e-3, 1 - 1e-3)),
    "jss.entr": (jss.entr, lambda x: -x * sp.log(x), S, (0.0, 100.0)),
    "jss.xlogy": (jss.xlogy, lambda x, y: x * sp.log(y), S2, [(-100.0, 100.0), (0.0, 100.0)]),
    "jss.xlog1py": (jss.xlog1py, lambda x, y: x * sp.log(1 + y), S2, [(-100.0, 100.0), (-1.0, 100.0)]),
    "jss.rel_entr": (jss.rel_entr, lambda x, y: x * sp.log(x / y), S2, (0.0, 100.0)),
    "jss.kl_div": (jss.kl_div, lambda x, y: x * sp.log(x / y) - x + y, S2, (0.0, 100.0)),
    "jss.logsumexp": (jss.logsumexp, logsumexp, V5, (-100.0, 100.0)),
    # ---------------------------------------------------------------- jax.nn
    "nn.softmax": (jnn.softmax, softmax, V5, (-100.0, 100.0)),
    "nn.log_softmax": (jnn.log_softmax, log_softmax, V5, (-100.0, 100.0)),
    "nn.logmeanexp": (jnn.logmeanexp, lambda x: logsumexp(x) - sp.log(len(x)), V5, (-100.0, 100.0)),
    "nn.standardize": (jnn.standardize, standardize, V5, (-50.0, 50.0)),
    "nn.glu": (jnn.glu, glu, [(6,)], (-50.0, 50.0)),
    "nn.sigmoid": (jnn.sigmoid, sigmoid, S, (-100.0, 100.0)),
    "nn.log_sigmoid": (jnn.log_sigmoid, lambda x: -softplus(-x), S, (-100.0, 100.0)),
    "nn.softplus": (jnn.softplus, softplus, S, (-100.0, 100.0)),
    "nn.silu": (jnn.silu, lambda x: x * sigmoid(x), S, (-50.0, 50.0)),
    "nn.mish": (jnn.mish, lambda x: x * sp.tanh(softplus(x)), S, (-50.0, 50.0)),
    "nn.gelu[exact]": (lambda x: jnn.gelu(x, approximate=False), gelu_exact_ref, S, (-50.0, 50.0)),
    "nn.gelu[tanh]": (
        jnn.gelu,
        lambda x: x / 2 * (1 + sp.tanh(sp.sqrt(2 / sp.pi) * (x + sp.Rational(44715, 1000000) * x**3))),
        S,
        (-50.0, 50.0),
    ),
    "nn.elu": (jnn.elu, lambda x: sp.Piecewise((x, x > 0), (sp.exp(x) - 1, True)), S, (-50.0, 50.0)),
    "nn.celu": (jnn.celu, lambda x: sp.Max(0, x) + sp.Min(0, sp.exp(x) - 1), S, (-50.0, 50.0)),
    "nn.selu": (
        jnn.selu,
        lambda x: SELU_SCALE * sp.Piecewise((x, x > 0), (SELU_ALPHA * (sp.exp(x) - 1), True)),
        S,
        (-50.0, 50.0),
    ),
    "nn.leaky_relu": (jnn.leaky_relu, lambda x: sp.Piecewise((x, x >= 0), (x / 100, True)), S, (-50.0, 50.0)),
    "nn.relu": (jnn.relu, relu_ref, S, (-50.0, 50.0)),
    "nn.relu6": (jnn.relu6, relu6, S, (-50.0, 50.0)),
    "nn.hard_tanh": (jnn.hard_tanh, lambda x: sp.Max(-1, sp.Min(1, x)), S, (-50.0, 50.0)),
    "nn.hard_sigmoid": (jnn.hard_sigmoid, lambda x: relu6(x + 3) / 6, S, (-50.0, 50.0)),
    "nn.hard_silu": (jnn.hard_silu, lambda x: x * relu6(x + 3) / 6, S, (-50.0, 50.0)),
    "nn.soft_sign": (jnn.soft_sign, lambda x: x / (1 + sp.Abs(x)), S, (-50.0, 50.0)),
    "nn.squareplus": (jnn.squareplus, lambda x: (x + sp.sqrt(x**2 + 4)) / 2, S, (-50.0, 50.0)),
    "nn.sparse_plus": (
        jnn.sparse_plus,
        lambda x: sp.Piecewise((0, x <= -1), ((x + 1) ** 2 / 4, x < 1), (x, True)),
        S,
        (-50.0, 50.0),
    ),
    "nn.log1mexp": (jnn.log1mexp, lambda x: sp.log(1 - sp.exp(-x)), S, (1e-3, 50.0)),
    "nn.tanh": (jnn.tanh, sp.tanh, S, (-50.0, 50.0)),
}

DTYPES = ("float32", "float64")

# Pairs a full run does not start unless --include-skipped: each never finishes (found by this
# sweep with jax 0.10.2; recorded in the table as skipped, with the reason).
SKIPPED: dict[str, str] = {
    "jss.expi": "hangs in JAX: jax.vmap(jss.expi) never returns at tiny negative x (-1e-17, -1e-30; "
    "float32 and float64; unbatched it does), an XLA loop --timeout cannot interrupt",
    "jss.gammaincc": "slow in gradcheck on x in [0, 50]: does not finish within 400 s (the mpmath truth of "
    "uppergamma's numerical partials near x = 0); jss.gammaincc[x>=0.01] runs",
}


def _short(v, digits=6) -> str:
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else ""


class CheckTimeout(BaseException):
    """Raised by SIGALRM when one check runs past --timeout (a BaseException, so that no
    ``except Exception`` inside the checker or Hypothesis swallows it)."""


def _alarm(signum, frame):
    raise CheckTimeout("the check did not finish within --timeout seconds")


def run_one(name: str, dtype: str, examples: int, seed: int, timeout: int = 0):
    """(record, report or None) of one (function, dtype) pair."""
    fn, ref, shapes, domain = FUNCTIONS[name]
    t0 = time.perf_counter()
    if timeout:
        signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(timeout)
    try:
        report = gradcheck.check(
            fn, ref, shapes=shapes, domain=domain, order=2, dtype=dtype, max_examples=examples, seed=seed
        )
    except (Exception, CheckTimeout) as e:
        secs = time.perf_counter() - t0
        rec = {
            "name": name,
            "dtype": dtype,
            "seconds": round(secs, 3),
            "error": f"{type(e).__name__}: {_first_line(e)}",
            "traceback": traceback.format_exc(),
        }
        return rec, None
    finally:
        if timeout:
            signal.alarm(0)
    secs = time.perf_counter() - t0
    rec = report.record()
    rec.update(
        name=name,
        dtype=dtype,
        seconds_total=round(secs, 3),
        diagnoses=[str(getattr(f, "diagnosis", "") or "") for f in report.failures],
    )
    return rec, report


def table_row(rec: dict, report) -> str:
    cell = lambda s: str(s).replace("|", "\\|").replace("\n", " ")
    secs = rec.get("seconds_total", rec.get("seconds"))
    if report is None:
        return f"| {rec['name']} | {rec['dtype']} | **{cell(rec['error'])}** | | | | {secs:.1f} |"
    if report.ok:
        return f"| {rec['name']} | {rec['dtype']} | ok | | | | {secs:.1f} |"
    kinds = "; ".join(f"{f.kind} [{f.mode}] {f.entry}" for f in report.failures)
    diags = "; ".join(d for d in rec["diagnoses"] if d)
    f = report.failures[0]
    first = (
        f"in={f.input_repr()} exp={_short(f.expected, 10)} got={_short(f.got, 10)} err={_short(f.error, 3)}"
        if not f.message
        else f.message
    )
    return (
        f"| {rec['name']} | {rec['dtype']} | FAILED {len(report.failures)} | {cell(kinds)} | "
        f"{cell(diags)} | {cell(first)} | {secs:.1f} |"
    )


def write_json(path: str, records: list) -> None:
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".sweep-", suffix=".json", dir=d)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(records, fh, indent=1, default=str)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--examples", type=int, default=200, help="max_examples per check (default 200)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", default="", help="comma-separated names of FUNCTIONS to run")
    p.add_argument("--dtypes", default=",".join(DTYPES), help="comma-separated dtypes (default both)")
    p.add_argument(
        "--timeout",
        type=int,
        default=600,
        help="seconds one check may run before it is recorded as an error (0: no limit)",
    )
    p.add_argument("--json", metavar="FILE", help="write every record (report.record()) to FILE")
    p.add_argument(
        "--accuracy",
        default="",
        metavar="NAME[,NAME]",
        help="print report.accuracy of these functions, where the Report has one",
    )
    p.add_argument("--include-skipped", action="store_true", help="also run the pairs in SKIPPED")
    p.add_argument("--full", action="store_true", help="print each failing report in full after the table")
    p.add_argument("--list", action="store_true", help="list the function names and exit")
    a = p.parse_args(argv)

    if a.list:
        print("\n".join(FUNCTIONS))
        return 0
    names = [n.strip() for n in a.only.split(",") if n.strip()] or list(FUNCTIONS)
    unknown = [n for n in names if n not in FUNCTIONS]
    if unknown:
        p.error(f"unknown function(s) {unknown}; --list shows the names")
    dtypes = [d.strip() for d in a.dtypes.split(",") if d.strip()]
    accuracy = {n.strip() for n in a.accuracy.split(",") if n.strip()}

    print(
        f"# gradcheck sweep: {len(names)} functions x {dtypes}, order 2, max_examples={a.examples}, "
        f"seed={a.seed}; jax {jax.__version__}, sympy {sp.__version__}\n"
    )
    print(
        "| function | dtype | verdict | failure kinds and modes | diagnosis | first failure: input, expected, got, rel. error | s |"
    )
    print("|---|---|---|---|---|---|---|")
    records, failing, extra = [], [], []
    t_all = time.perf_counter()
    for name in names:
        for dtype in dtypes:
            if name in SKIPPED and not a.include_skipped:
                rec = {"name": name, "dtype": dtype, "skipped": SKIPPED[name]}
                records.append(rec)
                print(f"| {name} | {dtype} | skipped (--include-skipped runs it) | | {SKIPPED[name]} | | |", flush=True)
                continue
            rec, report = run_one(name, dtype, a.examples, a.seed, a.timeout)
            records.append(rec)
            print(table_row(rec, report), flush=True)
            if report is None or not report.ok:
                failing.append((rec, report))
            if name in accuracy and report is not None:
                acc = getattr(report, "accuracy", None)
                extra.append(
                    f"accuracy of {name} ({dtype}): "
                    + (str(acc) if acc is not None else "(this Report has no accuracy attribute)")
                )
            if a.json:
                write_json(a.json, records)

    n_ok = sum(1 for r in records if r.get("ok"))
    n_err = sum(1 for r in records if "error" in r)
    n_skip = sum(1 for r in records if "skipped" in r)
    print(
        f"\n{len(records)} checks: {n_ok} ok, {len(records) - n_ok - n_err - n_skip} failed, {n_err} errors, "
        f"{n_skip} skipped; "
        f"{time.perf_counter() - t_all:.0f} s"
    )
    for line in extra:
        print(line)
    if a.full:
        for rec, report in failing:
            print(f"\n## {rec['name']} ({rec['dtype']})")
            print(rec.get("traceback") if report is None else str(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
