"""costs.quadratic_sigmoid and costs.cross_entropy_sigmoid: the gradients of the two costs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import sympy as sp

import gradcheck
from gradcheck.catalogue import Derivation, Step, evidence
from gradcheck.symbolic import array_symbols, concrete, logistic, sigma
from proofs import claim

from ._forms import (
    DSIGMA,
    _positive_int,
    b,
    cancel_sigma_prime,
    cross_entropy,
    name_preactivation,
    quadratic_cost,
    simplify_in_sigma,
    y,
    z,
)


# --- costs.quadratic_sigmoid --------------------------------------------------------------------
@claim(
    seeds=("003",),
    expected=("proved", "verified"),
    title=r"Gradient of the quadratic cost of a sigmoid neuron",
    statement=r"for $C = (a - y)^{2}/2$ with $a = \sigma(w^{T} x + b)$: $\partial C/\partial w = (a - y) \sigma'(z) "
    r"x$ and $\partial C/\partial b = (a - y) \sigma'(z)$, a factor $\sigma'(z) \leq 1/4$ that vanishes as "
    r"the neuron saturates",
    params={"n": 3},
)
def quadratic_sigmoid(n=3) -> Derivation:
    n = _positive_int("n (inputs of the neuron)", n)
    w, x = array_symbols("w", (n,)), array_symbols("x", (n,))
    pre = (w.T * x)[0] + b
    C = quadratic_cost(sigma(pre), y)
    dw = sp.Matrix([name_preactivation(sp.diff(C, wj), pre) for wj in w])
    db = name_preactivation(sp.diff(C, b), pre)
    a = sigma(z)
    C_sym = sp.Symbol("C")
    return Derivation(
        statement=[
            sp.Eq(sp.Derivative(C_sym, sp.Symbol("w")), (a - y) * DSIGMA * sp.Symbol("x")),
            sp.Eq(sp.Derivative(C_sym, b), (a - y) * DSIGMA),
        ],
        steps=[
            Step(C_sym, quadratic_cost(a, y), f"a = sigma(z), z = w^T x + b, {n} inputs"),
            Step(sp.Derivative(C_sym, sp.Symbol("w")), dw, "sympy.diff with respect to each w_j (generic sigma)"),
            Step(sp.Derivative(C_sym, b), db, "sympy.diff with respect to b"),
        ],
        objects={
            "w": w,
            "x": x,
            "pre": pre,
            "C": C,
            "dw": dw,
            "db": db,
            "dw_textbook": (a - y) * DSIGMA * x,
            "db_textbook": (a - y) * DSIGMA,
        },
    )


def _quadratic_jax(w, b, x, y):
    return 0.5 * (jax.nn.sigmoid(jnp.dot(w, x) + b) - y) ** 2


def _quadratic_reference(w, b, x, y):
    return quadratic_cost(logistic((w.T * x)[0] + b), y)


@quadratic_sigmoid.verifier
def _(d: Derivation, s: gradcheck.Settings):
    yield evidence.identity(d["dw"], d["dw_textbook"], "dC/dw = (a - y) sigma'(z) x (generic sigma)")
    yield evidence.identity(d["db"], d["db_textbook"], "dC/db = (a - y) sigma'(z)")
    concrete_dw = sp.Matrix([sp.diff(concrete(d["C"]), wj) for wj in d["w"]])
    p = logistic(d["pre"])
    yield evidence.identity(
        concrete_dw, (p - y) * p * (1 - p) * d["x"], "with the logistic substituted: dC/dw = (a - y) a (1 - a) x"
    )
    n = d["w"].shape[0]
    yield evidence.checked(
        _quadratic_jax,
        _quadratic_reference,
        "jax.grad of the quadratic cost of a sigmoid neuron agrees with SymPy (float64)",
        s,
        shapes=[(n,), (), (n,), ()],
        domain=[(-50.0, 50.0), (-50.0, 50.0), (-50.0, 50.0), (0.0, 1.0)],
        dtype="float64",
    )


# --- costs.cross_entropy_sigmoid ------------------------------------------------------------
@claim(
    seeds=("003",),
    expected=("proved", "verified"),
    title=r"Cross-entropy cancels the sigmoid's derivative",
    statement=r"for $C = -[y \ln a + (1 - y) \ln(1 - a)]$, $a = \sigma(w^{T} x + b)$: $\partial C/\partial w_{j} = "
    r"x_{j} (\sigma(z) - y)$, with no $\sigma'$ factor; averaged over $n$ examples, $\frac{1}{n} \sum_{x} "
    r"x_{j} (\sigma(z) - y)$",
    params={"n": 2, "examples": 2},
)
def cross_entropy_sigmoid(n=2, examples=2) -> Derivation:
    n, examples = _positive_int("n (inputs of the neuron)", n), _positive_int("examples", examples)
    w, x = array_symbols("w", (n,)), array_symbols("x", (n,))
    pre = (w.T * x)[0] + b
    C = cross_entropy(sigma(pre), y)
    generic = sp.Matrix([name_preactivation(sp.diff(C, wj), pre) for wj in w])
    cancelled = simplify_in_sigma(cancel_sigma_prime(generic))
    # averaged over `examples` examples: rows of X, targets Y
    X, Y = array_symbols("X", (examples, n)), array_symbols("Y", (examples,))
    pres = [(X[k, :] * w)[0] + b for k in range(examples)]
    C_avg = sum(cross_entropy(sigma(pk), Y[k]) for k, pk in enumerate(pres)) / examples
    avg = simplify_in_sigma(cancel_sigma_prime(sp.Matrix([sp.diff(C_avg, wj) for wj in w])))
    avg_textbook = sp.Matrix(
        [sum(X[k, j] * (sigma(pres[k]) - Y[k]) for k in range(examples)) / examples for j in range(n)]
    )
    # index form, for a symbolic number N of examples (one input, so z_k = w1 x_k + b)
    N = sp.Symbol("n", integer=True, positive=True)
    k = sp.Symbol("k", integer=True, positive=True)
    w1 = sp.Symbol("w", real=True)
    xi, yi = sp.IndexedBase("x", real=True), sp.IndexedBase("y", real=True)
    zk = w1 * xi[k] + b
    C_idx = sp.Sum(cross_entropy(sigma(zk), yi[k]), (k, 1, N)) / N
    d_idx = cancel_sigma_prime(sp.diff(C_idx, w1))
    d_idx = d_idx.replace(lambda e: isinstance(e, sp.Sum), lambda e: sp.Sum(simplify_in_sigma(e.function), *e.limits))
    idx_textbook = sp.Sum(xi[k] * (sigma(zk) - yi[k]), (k, 1, N)) / N
    C_sym, wj = sp.Symbol("C"), sp.Symbol("w_j")
    return Derivation(
        statement=[
            sp.Eq(sp.Derivative(C_sym, wj), sp.Symbol("x_j") * (sigma(z) - y)),
            sp.Eq(sp.Derivative(sp.Symbol(r"\bar{C}"), w1), idx_textbook),
        ],
        steps=[
            Step(C_sym, cross_entropy(sigma(z), y), f"a = sigma(z), z = w^T x + b, {n} inputs"),
            Step(
                sp.Derivative(C_sym, sp.Symbol("w")), generic, "sympy.diff (generic sigma): a sigma'(z) factor appears"
            ),
            Step(DSIGMA, sigma(z) * (1 - sigma(z)), "the logistic's derivative (sigmoid.derivative)"),
            Step(sp.Derivative(C_sym, sp.Symbol("w")), cancelled, "substituted and simplified: sigma' has cancelled"),
            Step(
                sp.Derivative(sp.Symbol(r"\bar{C}"), w1),
                d_idx,
                "averaged over n examples (symbolic n, index form): the 1/n sum of x_k (sigma(z_k) - y_k)",
            ),
        ],
        objects={
            "w": w,
            "x": x,
            "pre": pre,
            "C": C,
            "generic": generic,
            "cancelled": cancelled,
            "textbook": x * (sigma(z) - y),
            "avg": avg,
            "avg_textbook": avg_textbook,
            "d_idx": d_idx,
            "idx_textbook": idx_textbook,
            "examples": examples,
        },
    )


def cross_entropy_jax(w, b, X, Y):
    """Mean binary cross-entropy of a sigmoid neuron over the rows of X.

    Written with ``log_sigmoid``: the textbook ``log(1 - sigmoid(z))`` is ``log(0) = -inf`` once
    sigmoid(z) rounds to 1 (z > 37 in float64), although the true cost is finite (about z).
    """
    zz = X @ w + b
    return -jnp.mean(Y * jax.nn.log_sigmoid(zz) + (1 - Y) * jax.nn.log_sigmoid(-zz))


def cross_entropy_reference(w, b, X, Y):
    """The mean cross-entropy with 1 - sigma(z) written as sigma(-z) (the same function, proved below).

    Why not ``log(1 - logistic(z))``: the referee evaluates the reference with 50 digits, and
    1 - 1/(1 + e^{-z}) cancels all of them once e^{-z} < 1e-50 (z > 115): the "truth" would then
    be wrong, or log(0).
    """
    m = X.shape[0]
    total = 0
    for k in range(m):
        zk = (X[k, :] * w)[0] + b
        total += -(Y[k] * sp.log(logistic(zk)) + (1 - Y[k]) * sp.log(logistic(-zk)))
    return total / m


@cross_entropy_sigmoid.verifier
def _(d: Derivation, s: gradcheck.Settings):
    yield evidence.identity(concrete(DSIGMA), logistic(z) * (1 - logistic(z)), "sigma'(z) = sigma(z)(1 - sigma(z))")
    no_factor = not any(e.has(sp.Derivative, sp.Subs) for e in d["cancelled"])
    yield evidence.fact(
        no_factor and any(e.has(sp.Derivative) for e in d["generic"]),
        "the chain rule's sigma'(z) factor is gone after the substitution",
        "sympy: the simplified gradient contains no Derivative",
    )
    yield evidence.identity(d["cancelled"], d["textbook"], "dC/dw_j = x_j (sigma(z) - y)")
    concrete_dw = sp.Matrix([sp.diff(concrete(d["C"]), wj) for wj in d["w"]])
    yield evidence.identity(
        concrete_dw,
        d["x"] * (logistic(d["pre"]) - y),
        "with the logistic substituted directly: dC/dw_j = x_j (sigma(z) - y)",
    )
    yield evidence.identity(
        d["avg"],
        d["avg_textbook"],
        f"averaged over {d['examples']} examples: dC/dw_j = (1/n) sum_k x_kj (sigma(z_k) - y_k)",
    )
    yield evidence.identity(d["d_idx"], d["idx_textbook"], "averaged over a symbolic number n of examples")
    yield evidence.identity(
        cross_entropy(logistic(z), y),
        -(y * sp.log(logistic(z)) + (1 - y) * sp.log(logistic(-z))),
        "1 - sigma(z) = sigma(-z) inside the cost (the form the numerical reference uses)",
    )
    n, m = d["w"].shape[0], d["examples"]
    yield evidence.checked(
        cross_entropy_jax,
        cross_entropy_reference,
        "jax.grad of the mean cross-entropy agrees with SymPy (float64)",
        s,
        shapes=[(n,), (), (m, n), (m,)],
        domain=[(-50.0, 50.0), (-50.0, 50.0), (-50.0, 50.0), (0.0, 1.0)],
        dtype="float64",
    )
