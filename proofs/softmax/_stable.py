"""Softmax: softmax.stable, the overflow of the textbook form and the thresholds where it breaks."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gradcheck
from gradcheck.catalogue import Derivation, Step, evidence
from gradcheck.symbolic import array_symbols
from proofs import claim

from ._forms import _classes, softmax_naive, softmax_shifted, softmax_sym


# --- softmax.stable ---------------------------------------------------------------------------
def _first_failing(bad, lo: float, hi: float, dtype) -> float:
    """Bisection for the smallest dtype value v in (lo, hi] with ``bad(v)``; bad(lo) is False, bad(hi) True."""
    np_t = np.dtype(dtype).type
    lo, hi = np_t(lo), np_t(hi)
    if bad(lo) or not bad(hi):
        raise ValueError(f"bisection needs a good lower end and a bad upper end, got {lo} and {hi}")
    while True:
        mid = np_t(lo + (hi - lo) / np_t(2))
        if mid <= lo or mid >= hi:  # lo and hi are adjacent dtype values
            return float(hi)
        if bad(mid):
            hi = mid
        else:
            lo = mid


def overflow_thresholds(dtype: str, C: int = 4) -> dict[str, float]:
    """Where the textbook softmax of (v, 0, ..., 0) breaks, found by bisection on the JAX function.

    ``non-finite``: the first v with a NaN/inf output (e^v overflows); ``wrong``: the first v with
    an output off by more than 1e-3 (on XLA CPU the reciprocal of the sum is flushed to 0 earlier);
    ``gradient wrong``: the first v where the Jacobian (jax.jacrev) is off by more than 1e-3 or
    not finite (JAX's rule for x / s computes s^-2, which overflows at half the threshold).
    """
    if dtype not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    C = _classes(C)
    ctx = gradcheck.float64() if dtype == "float64" else jax.enable_x64(False)
    with ctx:
        f = jax.jit(softmax_naive)
        jac = jax.jit(jax.jacrev(softmax_naive))

        def truth_first(v):  # softmax(v, 0, ..., 0)_0, for v >= 1 (no overflow in float64 math)
            return 1.0 / (1.0 + (C - 1) * math.exp(-float(v)))

        def at(v):
            x = np.zeros(C, dtype=dtype)
            x[0] = v
            return jnp.asarray(x)

        def nonfinite(v):
            return not bool(jnp.all(jnp.isfinite(f(at(v)))))

        def wrong(v):
            out = np.asarray(f(at(v)))
            return not (np.all(np.isfinite(out)) and abs(float(out[0]) - truth_first(v)) < 1e-3)

        def grad_wrong(v):
            e = math.exp(-float(v))  # the Jacobian diag(y) - y y^T of (v, 0, ..., 0), in float64 math
            y = np.array([1.0] + [e] * (C - 1)) / (1.0 + (C - 1) * e)
            J = np.asarray(jac(at(v)), dtype=np.float64)
            return not (np.all(np.isfinite(J)) and np.max(np.abs(J - (np.diag(y) - np.outer(y, y)))) < 1e-3)

        hi = 1e4 if dtype == "float64" else 1e3
        return {
            "non-finite": _first_failing(nonfinite, 1.0, hi, dtype),
            "wrong": _first_failing(wrong, 1.0, hi, dtype),
            "gradient wrong": _first_failing(grad_wrong, 1.0, hi, dtype),
            "ln(max float)": math.log(float(np.finfo(dtype).max)),
        }


def first_outputs(dtype: str, C: int = 4, top: float = 800.0, points: int = 801):
    """softmax(v, 0, ..., 0)_0 by the textbook and the shifted form for v in [0, top] (the report's figure)."""
    ctx = gradcheck.float64() if dtype == "float64" else jax.enable_x64(False)
    with ctx:
        v = np.linspace(0.0, top, points)
        x = np.zeros((points, _classes(C)), dtype=dtype)
        x[:, 0] = v
        both = jax.jit(jax.vmap(lambda a: jnp.stack([softmax_naive(a)[0], softmax_shifted(a)[0]])))
        out = np.asarray(both(jnp.asarray(x)), dtype=np.float64)
    return {"v": v, "naive": out[:, 0], "shifted": out[:, 1]}


@claim(
    seeds=("003",),
    expected=("verified", "refuted"),
    title=r"The shifted softmax never overflows; the textbook form does above $\ln(\max \mathrm{float})$",
    statement=r"$\operatorname{softmax}(a - \max a)$ is finite for every finite input; the textbook form overflows "
    r"once $\max(a) > \ln(\max \mathrm{float})$: $88.72$ in float32, $709.78$ in float64, thresholds the "
    r"suite finds itself",
    params={"C": 4},
)
def stable(C=4) -> Derivation:
    C = _classes(C)
    a = array_symbols("a", (C,))
    fmax = sp.Symbol(r"\mathrm{float}_{\max}", positive=True)

    # ln of the largest finite float, exactly: the binary formats' largest values in closed form
    def ln_largest(mantissa_bits, max_exponent):  # ln((2 - 2^-p) 2^e), kept unevaluated for display
        two = sp.Integer(2)
        mant = sp.Add(two, -sp.Pow(two, -mantissa_bits, evaluate=False), evaluate=False)
        return sp.log(sp.Mul(mant, sp.Pow(two, max_exponent, evaluate=False), evaluate=False), evaluate=False)

    ln64, ln32 = ln_largest(52, 1023), ln_largest(23, 127)
    return Derivation(
        statement=[
            sp.Eq(sp.Function("softmax")(sp.Symbol("a")), sp.Symbol(r"e^{a - \max a} / \sum_k e^{a_k - \max a}")),
            sp.StrictGreaterThan(sp.Symbol(r"\max_i a_i"), sp.log(fmax)),
        ],
        steps=[
            Step(
                sp.Symbol(r"e^{a_i}"),
                sp.oo,
                "overflows once a_i > ln(float_max): the textbook form gives inf/inf = NaN",
            ),
            Step(
                sp.log(sp.Symbol(r"\mathrm{float64}_{\max}")),
                ln64,
                f"= {float(ln64):.6f}; the largest float64 is (2 - 2^-52) 2^1023 (the verification finds the "
                "threshold by bisection on the JAX function)",
            ),
            Step(sp.log(sp.Symbol(r"\mathrm{float32}_{\max}")), ln32, f"= {float(ln32):.6f}; (2 - 2^-23) 2^127"),
            Step(
                sp.Symbol("a_i") - sp.Function("max")(sp.Symbol("a")),
                sp.Interval(-sp.oo, 0),
                "after the shift every exponent is <= 0: e^{.} in (0, 1]",
            ),
            Step(
                sp.Symbol(r"\sum_k e^{a_k - \max a}"),
                sp.Interval(1, C),
                "the largest term is e^0 = 1: no 0/0, no overflow",
            ),
        ],
        objects={"C": C, "a": a, "ln_max": {"float64": ln64, "float32": ln32}},
    )


@stable.verifier
def _(d: Derivation, s: gradcheck.Settings):
    C = d["C"]
    for dtype in ("float64", "float32"):
        th = overflow_thresholds(dtype, C)
        report = gradcheck.check(
            softmax_naive,
            softmax_sym,
            shapes=[(C,)],
            domain=(-1000.0, 1000.0),
            dtype=dtype,
            max_examples=s.max_examples,
            seed=s.seed,
        )
        nonfinite = [f for f in report.failures if f.kind == "non-finite" and f.argument is None]
        found = bool(nonfinite) and float(np.max(nonfinite[0].input[0])) >= th["non-finite"]
        exact = float(d["ln_max"][dtype])  # SymPy's closed form, against NumPy's finfo and the bisection
        near = abs(th["non-finite"] - exact) <= 1e-5 * exact and abs(th["ln(max float)"] - exact) <= 1e-12 * exact
        cex = (
            f"softmax_naive{nonfinite[0].input_repr()} = {nonfinite[0].got} in {dtype} (truth {nonfinite[0].expected})"
            if nonfinite
            else None
        )
        ok = found and near
        yield gradcheck.Finding(
            "refuted" if ok else None,
            ok,
            f"the textbook softmax overflows in {dtype}: NaN once max(a) > {th['non-finite']:.6f} "
            f"(ln of the largest {dtype}: {th['ln(max float)']:.6f})"
            if ok
            else f"the textbook softmax's overflow in {dtype} was not found where expected: {th}",
            "gradcheck.check (shrunk non-finite failure) + bisection on the JAX function",
            figure={k: round(v, 6) for k, v in th.items()},
            counterexample=cex,
            record={**report.record(), "thresholds": th},
            curves=first_outputs(dtype, C, top=800.0 if dtype == "float64" else 120.0),
        )
        big = float(np.finfo(dtype).max)
        # gradcheck.check is given +-max/2: with (-max, max) its uniform sampler computes hi - lo,
        # which overflows (OverflowError, reported to the engine).  The attack below covers the
        # whole finite range, +-max included.
        yield evidence.checked(
            softmax_shifted,
            softmax_sym,
            f"the shifted softmax and its Jacobian agree with the truth for logits up to +-{big / 2:.3g} ({dtype})",
            s,
            shapes=[(C,)],
            domain=(-big / 2, big / 2),
            dtype=dtype,
        )
        # the whole finite range, ends included: never a NaN or inf, in values or Jacobian
        width = 64 if dtype == "float64" else 32
        ctx = gradcheck.float64() if dtype == "float64" else jax.enable_x64(False)
        with ctx:
            f = jax.jit(lambda a: (softmax_shifted(a), jax.jacrev(softmax_shifted)(a)))

            eps = float(np.finfo(dtype).eps)

            def breaks(a, f=f, eps=eps):
                y, J = f(jnp.asarray(a))
                return not (
                    bool(jnp.all(jnp.isfinite(y)))
                    and bool(jnp.all(jnp.isfinite(J)))
                    and abs(float(jnp.sum(y)) - 1.0) <= 8 * eps
                )

            el = st.floats(-big, big, width=width, allow_nan=False, allow_infinity=False)
            yield evidence.attack(
                breaks,
                hnp.arrays(np.dtype(dtype), (C,), elements=el),
                f"the shifted softmax is finite, sums to 1 and has a finite Jacobian for every finite {dtype} input",
                s,
            )
