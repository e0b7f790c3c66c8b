"""``gradcheck.check`` passes correct functions: the checker's "should pass" side.

Every reference here is written the natural, naive way a textbook writes it
(``exp(a_i) / sum_j exp(a_j)``, ``log(1 + exp(x))``), so lambdified to float64 it overflows at
the +-1000 logits these tests use.  A checker that trusted that float64 reference would
raise false alarms; the engine must referee with the high-precision truth instead.  The
"should fail" side of each check is in ``test_check_broken.py``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import gradcheck
from gradcheck.models.references import (
    gelu_exact_ref,
    log_softmax_ref,
    logsumexp_ref,
    relu_ref,
    sigmoid_ref,
    softmax_ref,
    softplus_ref,
)
from gradcheck.symbolic import array_symbols, flatten

# --------------------------------------------------------------------------------------------
# References, written naively on purpose
# --------------------------------------------------------------------------------------------


def gelu_tanh_ref(x):
    return x / 2 * (1 + sp.tanh(sp.sqrt(2 / sp.pi) * (x + sp.Rational(44715, 10**6) * x**3)))


def tanh_ref(x):
    return sp.tanh(x)


def gelu_exact(x):
    return jax.nn.gelu(x, approximate=False)


def gelu_tanh(x):
    return jax.nn.gelu(x, approximate=True)


def vec_matmul(x, W):
    return x @ W


def vec_matmul_ref(x, W):
    return (x.T * W).T  # (1 x 3)(3 x 2) -> 1 x 2, returned as the 2 x 1 column of fn's (2,)


A = np.array([[1.0, -2.0, 0.5], [0.0, 3.0, 1.0], [-1.5, 0.25, 2.0]])
A_SYM = sp.Matrix(3, 3, [sp.nsimplify(v) for v in A.ravel()])


def bilinear(x, y):
    return x @ jnp.asarray(A, dtype=x.dtype) @ y


def bilinear_ref(x, y):
    return (x.T * A_SYM * y)[0, 0]


def tanh_of_matrix(W):
    return jnp.tanh(W)


def tanh_of_matrix_ref(W):
    return W.applyfunc(sp.tanh)


def outer_sigmoid(x, y):
    return jax.nn.sigmoid(jnp.outer(x, y))


def outer_sigmoid_ref(x, y):
    return (x * y.T).applyfunc(sigmoid_ref)


# id: (fn, reference, shapes, domain)
CORRECT = {
    "softmax": (jax.nn.softmax, softmax_ref, [(4,)], (-1000.0, 1000.0)),
    "log_softmax": (jax.nn.log_softmax, log_softmax_ref, [(4,)], (-1000.0, 1000.0)),
    "logsumexp": (jax.scipy.special.logsumexp, logsumexp_ref, [(4,)], (-1000.0, 1000.0)),
    "sigmoid": (jax.nn.sigmoid, sigmoid_ref, [()], (-1000.0, 1000.0)),
    "softplus": (jax.nn.softplus, softplus_ref, [()], (-1000.0, 1000.0)),
    "gelu_exact": (gelu_exact, gelu_exact_ref, [()], (-1000.0, 1000.0)),
    "gelu_tanh": (gelu_tanh, gelu_tanh_ref, [()], (-1000.0, 1000.0)),
    "tanh": (jnp.tanh, tanh_ref, [()], (-1000.0, 1000.0)),
    "x_matmul_W": (vec_matmul, vec_matmul_ref, [(3,), (3, 2)], (-100.0, 100.0)),
    "bilinear_form": (bilinear, bilinear_ref, [(3,), (3,)], (-100.0, 100.0)),
    "tanh_of_matrix": (tanh_of_matrix, tanh_of_matrix_ref, [(2, 3)], (-50.0, 50.0)),
    "outer_sigmoid": (outer_sigmoid, outer_sigmoid_ref, [(2,), (3,)], (-30.0, 30.0)),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(CORRECT))
def test_correct_function_passes_over_its_whole_domain(name, dtype, examples):
    fn, ref, shapes, domain = CORRECT[name]
    report = gradcheck.check(fn, ref, shapes=shapes, domain=domain, dtype=dtype, max_examples=examples)
    assert report.ok, str(report)
    assert report.failures == []
    # forward and reverse mode were both checked: no mode was skipped for a plain JAX function
    assert "forward mode" in report.modes and "skipped" not in report.modes["forward mode"]
    assert "reverse mode" in report.modes


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp", "sigmoid", "softplus"])
def test_naive_reference_overflows_in_float64_at_1000_so_the_pass_is_not_trivial(name):
    """The premise of the +-1000 tests: the float64 reference alone is not finite there."""
    fn, ref, shapes, _ = CORRECT[name]
    syms = [array_symbols(f"x{i}", s) for i, s in enumerate(shapes)]
    flat = [v for s in syms for v in flatten(s)]
    values = flatten(ref(*syms))
    derivatives = [sp.diff(v, x) for v in values for x in flat]
    f = sp.lambdify(flat, values + derivatives, modules="numpy")
    finite = True
    with np.errstate(all="ignore"):
        for sign in (1.0, -1.0):
            x = np.full(len(flat), 1000.0 * sign)
            x[0] = -1000.0 * sign
            finite &= bool(np.all(np.isfinite(np.asarray(f(*x), dtype=np.float64))))
    assert not finite


@pytest.mark.parametrize("name", ["softmax", "sigmoid", "tanh", "log_softmax", "bilinear_form"])
def test_correct_function_passes_second_order(name, examples):
    fn, ref, shapes, domain = CORRECT[name]
    report = gradcheck.check(fn, ref, shapes=shapes, domain=domain, order=2, max_examples=examples // 2)
    assert report.ok, str(report)
    assert "second order" in report.modes


def x_log_y(x, y):
    return x * jnp.log(y)


def x_log_y_ref(x, y):
    return sp.Matrix([xi * sp.log(yi) for xi, yi in zip(x, y)])


def test_two_argument_function_with_a_domain_per_argument_passes(examples):
    report = gradcheck.check(
        x_log_y,
        x_log_y_ref,
        shapes=[(2,), (2,)],
        domain=[(-1000.0, 1000.0), (1e-3, 1e3)],
        max_examples=examples,
        order=2,
    )
    assert report.ok, str(report)
    assert report.record()["domain"] == [[-1000.0, 1000.0], [1e-3, 1e3]]


@pytest.mark.parametrize(
    "fn, ref, domain",
    [(jnp.sqrt, sp.sqrt, (1e-3, 1e6)), (jnp.log1p, lambda x: sp.log(1 + x), (-0.999, 1000.0))],
    ids=["sqrt", "log1p"],
)
def test_float32_check_accepts_domain_bounds_that_float32_cannot_represent_exactly(fn, ref, domain):
    # 0.001 and -0.999 are not float32 numbers; a user types them anyway
    report = gradcheck.check(fn, ref, shapes=[()], domain=domain, dtype="float32", max_examples=50)
    assert report.ok, str(report)


# --------------------------------------------------------------------------------------------
# Correct custom rules: the "should pass" twins of the broken rules
# --------------------------------------------------------------------------------------------
@jax.custom_jvp
def sigmoid_custom_jvp(x):
    return jax.nn.sigmoid(x)


@sigmoid_custom_jvp.defjvp
def _sigmoid_custom_jvp_rule(primals, tangents):
    (x,), (t,) = primals, tangents
    s = jax.nn.sigmoid(x)
    return s, s * (1 - s) * t


@jax.custom_vjp
def sigmoid_custom_vjp(x):
    return jax.nn.sigmoid(x)


def _sigmoid_fwd(x):
    s = jax.nn.sigmoid(x)
    return s, s


def _sigmoid_bwd(s, g):
    return (g * s * (1 - s),)


sigmoid_custom_vjp.defvjp(_sigmoid_fwd, _sigmoid_bwd)


def test_correct_custom_jvp_rule_passes_to_second_order(examples):
    report = gradcheck.check(sigmoid_custom_jvp, sigmoid_ref, shapes=[()], order=2, max_examples=examples)
    assert report.ok, str(report)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_correct_custom_vjp_rule_passes_and_forward_mode_is_reported_skipped(dtype, examples):
    report = gradcheck.check(sigmoid_custom_vjp, sigmoid_ref, shapes=[()], dtype=dtype, max_examples=examples)
    assert report.ok, str(report)
    assert "skipped" in report.modes["forward mode"]
    assert "custom_vjp" in report.modes["forward mode"]
    assert "reverse mode" in report.modes


# --------------------------------------------------------------------------------------------
# Kinks: a convention at a kink is not a bug
# --------------------------------------------------------------------------------------------
def abs_ref(x):
    return sp.Abs(x)


def vector_relu_ref(x):
    return x.applyfunc(relu_ref)


def test_relu_derivative_convention_at_zero_differs_between_jax_and_sympy():
    """The premise: JAX says relu'(0) = 0, SymPy's Heaviside(0) = 1/2."""
    x = sp.Symbol("x", real=True)
    assert sp.diff(sp.Max(0, x), x).subs(x, 0) == sp.Rational(1, 2)
    assert float(jax.grad(jax.nn.relu)(0.0)) == 0.0


@pytest.mark.parametrize(
    "fn, ref, shapes",
    [(jax.nn.relu, relu_ref, [()]), (jnp.abs, abs_ref, [()]), (jax.nn.relu, vector_relu_ref, [(3,)])],
    ids=["relu", "abs", "vector_relu"],
)
def test_function_correct_except_for_the_convention_at_a_kink_passes_and_says_so(fn, ref, shapes, examples):
    report = gradcheck.check(fn, ref, shapes=shapes, domain=(-10.0, 10.0), max_examples=examples)
    assert report.ok, str(report)
    assert report.kink_points > 0  # 0 itself was sampled, and excused
    assert "kink" in str(report) and "not compared" in report.kinks
    assert report.record()["kink_points"] == report.kink_points
