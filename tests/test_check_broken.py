"""``gradcheck.check`` rejects wrong derivative rules: the checker's "should fail" side.

Each rule below is a deliberate bug of a kind seen in real code, written with
``jax.custom_jvp`` or ``jax.custom_vjp``, next to the SymPy reference of the function it claims
to differentiate.  Each must fail, with the right failure kind ('value', 'gradient',
'second-derivative', 'non-finite') and, where it means something, the right argument.
Their correct twins pass in ``test_check_correct.py``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp
from jax import lax

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

BIG = (-1000.0, 1000.0)
MID = (-10.0, 10.0)

# --------------------------------------------------------------------------------------------
# References (naive, as a textbook writes them)
# --------------------------------------------------------------------------------------------


def jvp_rule_of(primal):
    """``@jvp_rule_of(f)`` on ``rule(x, t) -> (y, y_dot)``: a one-argument custom_jvp of ``f``
    with that rule, named after the rule."""

    def wrap(rule):
        # a one-argument wrapper: custom_jvp would trace the primal's keyword defaults too
        f = jax.custom_jvp(lambda x: primal(x))
        f.defjvp(lambda p, t: rule(p[0], t[0]))
        f.__name__ = rule.__name__
        return f

    return wrap


# --------------------------------------------------------------------------------------------
# The broken rules
# --------------------------------------------------------------------------------------------
@jvp_rule_of(jax.nn.sigmoid)
def sigmoid_wrong_sign(x, t):
    s = jax.nn.sigmoid(x)
    return s, -s * (1 - s) * t


@jvp_rule_of(jax.nn.sigmoid)
def sigmoid_missing_factor(x, t):
    s = jax.nn.sigmoid(x)
    return s, s * t  # the (1 - s) factor is missing


@jvp_rule_of(lambda x: jnp.sin(2 * x))
def sin2x_missing_chain_factor(x, t):
    return jnp.sin(2 * x), jnp.cos(2 * x) * t  # d/dx sin(2x) = 2 cos(2x): inner derivative dropped


@jvp_rule_of(jnp.tanh)
def tanh_missing_square(x, t):
    y = jnp.tanh(x)
    return y, (1 - y) * t  # 1 - tanh, not 1 - tanh^2


@jvp_rule_of(jax.nn.softmax)
def softmax_without_cross_terms(x, t):
    y = jax.nn.softmax(x)
    return y, y * t  # J = diag(y) - y y^T: the -y_i y_j term is missing


@jvp_rule_of(jax.nn.log_softmax)
def log_softmax_transposed(x, t):
    y = jax.nn.softmax(x)
    return jax.nn.log_softmax(x), t - y * jnp.sum(t)  # (I - 1 y^T)^T t instead of t - <y, t>


@jvp_rule_of(jnp.sin)
def sin_wrong_above_3(x, t):
    return jnp.sin(x), jnp.where(x > 3, 1.5 * jnp.cos(x), jnp.cos(x)) * t


@jvp_rule_of(jax.nn.softplus)
def softplus_nan_for_large_x(x, t):
    # sigmoid as e^x / (1 + e^x): inf / inf = NaN above x = 709 in float64, where it is 1
    return jax.nn.softplus(x), jnp.exp(x) / (1 + jnp.exp(x)) * t


def smooth_huber_ref(x):
    return (x**2 - sp.log(1 + x**2)) / 2


@jvp_rule_of(lambda x: (x * x - jnp.log1p(x * x)) / 2)
def smooth_huber_inf_for_huge_x(x, t):
    # f'(x) = x - x/(1+x^2) = x^3/(1+x^2): written as a quotient, x^3 overflows first (inf)
    return (x * x - jnp.log1p(x * x)) / 2, x**3 / (1 + x * x) * t


@jvp_rule_of(jax.nn.sigmoid)
def sigmoid_off_by_1e_4(x, t):
    s = jax.nn.sigmoid(x)
    return s, s * (1 - s) * (1 + 1e-4) * t


@jvp_rule_of(lambda x: jax.nn.gelu(x, approximate=False))
def gelu_with_tanh_approximation_derivative(x, t):
    # exact forward pass, derivative of the tanh approximation: off by up to ~1e-3
    _, d = jax.jvp(lambda z: jax.nn.gelu(z, approximate=True), (x,), (jnp.ones_like(x),))
    return jax.nn.gelu(x, approximate=False), d * t


@jvp_rule_of(jax.scipy.special.logsumexp)
def logsumexp_unshifted_gradient(x, t):
    # gradient softmax(x) as exp(x) / sum(exp(x)): NaN at 1000 even in float64
    e = jnp.exp(x)
    return jax.scipy.special.logsumexp(x), jnp.sum(e * t) / jnp.sum(e)


def naive_softmax(x):
    e = jnp.exp(x)
    return e / jnp.sum(e)


def naive_logsumexp(x):
    return jnp.log(jnp.sum(jnp.exp(x)))


@jvp_rule_of(lambda x: jnp.sin(x) + 0.01)
def sin_value_off(x, t):
    return jnp.sin(x) + 0.01, jnp.cos(x) * t  # right derivative, wrong value


# a bug in one argument of a two-argument function
@jax.custom_jvp
def x_sin_y_wrong_in_y(x, y):
    return x * jnp.sin(y)


@x_sin_y_wrong_in_y.defjvp
def _x_sin_y_rule(primals, tangents):
    (x, y), (tx, ty) = primals, tangents
    return x * jnp.sin(y), jnp.sin(y) * tx + x * jnp.sin(y) * ty  # d/dy should be x cos(y)


def x_sin_y_ref(x, y):
    return x * sp.sin(y)


# a transposed Jacobian for a matrix argument
@jax.custom_jvp
def matvec_transposed_in_W(W, x):
    return W @ x


@matvec_transposed_in_W.defjvp
def _matvec_rule(primals, tangents):
    (W, x), (tW, tx) = primals, tangents
    return W @ x, tW.T @ x + W @ tx  # should be tW @ x


def matvec_ref(W, x):
    return W * x


# relu-like rules
@jvp_rule_of(jax.nn.relu)
def relu_wrong_left_of_kink(x, t):
    return jax.nn.relu(x), jnp.where(x > -1, 1.0, 0.0) * t  # slope 1 on (-1, 0) too


@jvp_rule_of(lambda x: jax.nn.leaky_relu(x, 0.01))
def leaky_relu_wrong_slope(x, t):
    return jax.nn.leaky_relu(x, 0.01), jnp.where(x > 0, 1.0, 0.1) * t  # 0.1, not 0.01


def leaky_relu_ref(x):
    return sp.Max(x, x / 100)


@jvp_rule_of(lambda x: x**3)
def cube_off_by_one_index(x, t):
    return x**3, 3 * jnp.roll(x, 1) ** 2 * t  # x[i-1] where x[i] was meant


def cube_ref(x):
    return x.applyfunc(lambda v: v**3)


# not linear in the tangent / cotangent
@jvp_rule_of(lambda x: x**2)
def square_jvp_not_linear(x, t):
    return x**2, 2 * x * t**2  # right for the basis tangents 0 and 1 only


@jax.custom_vjp
def square_vjp_not_linear(x):
    return x**2


square_vjp_not_linear.defvjp(lambda x: (x**2, x), lambda x, g: (2 * x * g**2,))


def square_ref(x):
    return x.applyfunc(lambda v: v**2)


# custom_vjp: no forward mode, a wrong backward pass
@jax.custom_vjp
def sigmoid_vjp_missing_factor(x):
    return jax.nn.sigmoid(x)


sigmoid_vjp_missing_factor.defvjp(lambda x: (jax.nn.sigmoid(x), jax.nn.sigmoid(x)), lambda s, g: (g * s,))


@jax.custom_vjp
def softmax_vjp_without_cross_terms(x):
    return jax.nn.softmax(x)


softmax_vjp_without_cross_terms.defvjp(
    lambda x: (jax.nn.softmax(x), jax.nn.softmax(x)),
    lambda y, g: (y * g,),  # y * (g - <y, g>)
)


# custom_vjp of two arguments, the cotangent of the second scaled wrongly
@jax.custom_vjp
def x_over_y_vjp_wrong_in_y(x, y):
    return x / y


x_over_y_vjp_wrong_in_y.defvjp(
    lambda x, y: (x / y, (x, y)),
    lambda r, g: (g / r[1], g * r[0] / r[1] ** 2),  # d/dy = -x / y^2
)


def x_over_y_ref(x, y):
    return x / y


# second-derivative-only bugs: the first derivative is right, its derivative is not
@jvp_rule_of(jnp.sin)
def sin_jvp_with_stop_gradient(x, t):
    return jnp.sin(x), jnp.cos(lax.stop_gradient(x)) * t


@jvp_rule_of(jnp.cos)
def _cos_with_wrong_rule(x, t):
    return jnp.cos(x), jnp.sin(x) * t  # d cos = -sin


@jvp_rule_of(jnp.sin)
def sin_jvp_through_a_wrong_helper(x, t):
    # cos(x) has the right value, so first derivatives are right; its own rule is wrong
    return jnp.sin(x), _cos_with_wrong_rule(x) * t


@jax.custom_jvp
def bilinear_stop_gradient_cross(x, y):
    return jnp.dot(x, y)


@bilinear_stop_gradient_cross.defjvp
def _bilinear_rule(primals, tangents):
    (x, y), (tx, ty) = primals, tangents
    return jnp.dot(x, y), jnp.dot(tx, lax.stop_gradient(y)) + jnp.dot(x, ty)  # d2/dx dy lost


def dot_ref(x, y):
    return (x.T * y)[0, 0]


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Broken:
    fn: Callable
    ref: Callable
    shapes: list
    kind: str  # the failure kind it must produce
    domain: tuple = BIG
    dtype: str = "float64"
    order: int = 1
    argument: int | None = 0  # the argument every failure of `kind` must name
    only: bool = False  # `kind` is the only kind of failure


BROKEN = {
    "sigmoid_wrong_sign": Broken(sigmoid_wrong_sign, sigmoid_ref, [()], "gradient", only=True),
    "sigmoid_missing_factor": Broken(sigmoid_missing_factor, sigmoid_ref, [()], "gradient", only=True),
    "sin2x_missing_chain_factor": Broken(
        sin2x_missing_chain_factor, lambda x: sp.sin(2 * x), [()], "gradient", domain=MID, only=True
    ),
    "tanh_missing_square": Broken(tanh_missing_square, sp.tanh, [()], "gradient", only=True),
    "softmax_without_cross_terms": Broken(softmax_without_cross_terms, softmax_ref, [(4,)], "gradient"),
    "log_softmax_transposed": Broken(log_softmax_transposed, log_softmax_ref, [(4,)], "gradient"),
    "sin_wrong_above_3": Broken(sin_wrong_above_3, sp.sin, [()], "gradient", domain=MID, only=True),
    "softplus_nan_for_large_x": Broken(softplus_nan_for_large_x, softplus_ref, [()], "non-finite"),
    "smooth_huber_inf_for_huge_x": Broken(
        smooth_huber_inf_for_huge_x, smooth_huber_ref, [()], "non-finite", domain=(-1e120, 1e120)
    ),
    "sigmoid_off_by_1e_4": Broken(sigmoid_off_by_1e_4, sigmoid_ref, [()], "gradient", only=True),
    "gelu_with_tanh_approximation_derivative": Broken(
        gelu_with_tanh_approximation_derivative, gelu_exact_ref, [()], "gradient", domain=MID, only=True
    ),
    "logsumexp_unshifted_gradient": Broken(logsumexp_unshifted_gradient, logsumexp_ref, [(3,)], "non-finite"),
    "naive_softmax_float32": Broken(naive_softmax, softmax_ref, [(3,)], "non-finite", dtype="float32", argument=None),
    "naive_logsumexp_float32": Broken(
        naive_logsumexp, logsumexp_ref, [(3,)], "non-finite", dtype="float32", argument=None
    ),
    "naive_softmax_float64_above_709": Broken(naive_softmax, softmax_ref, [(3,)], "non-finite", argument=None),
    "sin_value_off": Broken(sin_value_off, sp.sin, [()], "value", domain=MID, argument=None, only=True),
    "x_sin_y_wrong_in_y": Broken(
        x_sin_y_wrong_in_y, x_sin_y_ref, [(), ()], "gradient", domain=MID, argument=1, only=True
    ),
    "matvec_transposed_in_W": Broken(
        matvec_transposed_in_W, matvec_ref, [(3, 3), (3,)], "gradient", domain=MID, argument=0, only=True
    ),
    "relu_wrong_left_of_kink": Broken(relu_wrong_left_of_kink, relu_ref, [()], "gradient", domain=MID, only=True),
    "leaky_relu_wrong_slope": Broken(leaky_relu_wrong_slope, leaky_relu_ref, [()], "gradient", only=True),
    "cube_off_by_one_index": Broken(cube_off_by_one_index, cube_ref, [(4,)], "gradient", domain=MID, only=True),
    "square_jvp_not_linear": Broken(square_jvp_not_linear, square_ref, [(3,)], "gradient", domain=MID),
    "square_vjp_not_linear": Broken(square_vjp_not_linear, square_ref, [(3,)], "gradient", domain=MID, only=True),
    "sigmoid_vjp_missing_factor": Broken(sigmoid_vjp_missing_factor, sigmoid_ref, [()], "gradient", only=True),
    "softmax_vjp_without_cross_terms": Broken(
        softmax_vjp_without_cross_terms, softmax_ref, [(4,)], "gradient", dtype="float32"
    ),
    "x_over_y_vjp_wrong_in_y": Broken(
        x_over_y_vjp_wrong_in_y,
        x_over_y_ref,
        [(), ()],
        "gradient",
        domain=[(-10.0, 10.0), (0.5, 10.0)],
        argument=1,
        only=True,
    ),
    "sin_jvp_with_stop_gradient": Broken(
        sin_jvp_with_stop_gradient, sp.sin, [()], "second-derivative", domain=MID, order=2, only=True
    ),
    "sin_jvp_through_a_wrong_helper": Broken(
        sin_jvp_through_a_wrong_helper, sp.sin, [()], "second-derivative", domain=MID, order=2, only=True
    ),
    "bilinear_stop_gradient_cross": Broken(
        bilinear_stop_gradient_cross,
        dot_ref,
        [(2,), (2,)],
        "second-derivative",
        domain=MID,
        order=2,
        argument=None,
        only=True,
    ),
}

#: Rules whose first derivatives are right: at order 1 they must pass.
SECOND_ORDER_ONLY = [k for k, b in BROKEN.items() if b.kind == "second-derivative"]


@functools.cache
def report_of(name: str, examples: int, seed: int = 0, order: int | None = None):
    """One check per broken rule, shared by the tests below (compiling dominates the time)."""
    b = BROKEN[name]
    return gradcheck.check(
        b.fn,
        b.ref,
        shapes=b.shapes,
        domain=b.domain,
        order=b.order if order is None else order,
        dtype=b.dtype,
        max_examples=examples,
        seed=seed,
    )


def kinds(report) -> set[str]:
    return {f.kind for f in report.failures}


def test_there_are_at_least_twenty_deliberately_wrong_rules():
    assert len(BROKEN) >= 20


@pytest.mark.parametrize("name", list(BROKEN))
def test_wrong_rule_fails_with_the_right_kind(name, examples):
    b = BROKEN[name]
    report = report_of(name, examples)
    assert not report.ok, f"{name} was not caught:\n{report}"
    assert b.kind in kinds(report), str(report)
    if b.only:
        assert kinds(report) == {b.kind}, str(report)
    if b.argument is not None:
        args = {f.argument for f in report.failures if f.kind == b.kind and f.input}
        assert args == {b.argument}, str(report)


@pytest.mark.parametrize("name", SECOND_ORDER_ONLY)
def test_second_derivative_only_bug_passes_at_order_1(name, examples):
    report = report_of(name, examples, order=1)
    assert report.ok, str(report)


def test_second_derivative_bug_in_a_cross_term_names_both_arguments(examples):
    report = report_of("bilinear_stop_gradient_cross", examples)
    (f,) = report.failures
    assert "x" in f.entry and "y" in f.entry, str(report)


def test_rule_wrong_only_above_3_fails_only_above_3(examples):
    report = report_of("sin_wrong_above_3", examples)
    for f in report.failures:
        assert float(f.input[0]) > 3, str(report)


def test_relu_rule_wrong_left_of_the_kink_fails_between_minus_1_and_0(examples):
    report = report_of("relu_wrong_left_of_kink", examples)
    for f in report.failures:
        assert -1 < float(f.input[0]) < 0, str(report)


def test_nan_rule_is_reported_where_the_truth_is_finite(examples):
    report = report_of("softplus_nan_for_large_x", examples)
    (f,) = [f for f in report.failures if f.kind == "non-finite"]
    assert math.isnan(f.got) and math.isfinite(f.expected), str(report)
    assert float(f.input[0]) > 709, str(report)


def test_inf_rule_is_reported_where_the_truth_is_finite(examples):
    report = report_of("smooth_huber_inf_for_huge_x", examples)
    (f,) = [f for f in report.failures if f.kind == "non-finite"]
    assert math.isinf(f.got) and math.isfinite(f.expected), str(report)


@pytest.mark.parametrize("name", ["naive_softmax_float32", "naive_logsumexp_float32"])
def test_naive_forward_pass_overflows_in_float32_where_the_value_is_finite(name, examples):
    report = report_of(name, examples)
    values = [f for f in report.failures if f.kind == "non-finite" and f.argument is None]
    assert values, str(report)
    assert all(math.isfinite(f.expected) for f in values)
    # float32 exp overflows above log(3.4e38) = 88.7: the shrunk input has an entry beyond it
    assert any(np.max(np.asarray(f.input[0])) > 88 for f in values), str(report)


@pytest.mark.parametrize("name", ["sigmoid_vjp_missing_factor", "softmax_vjp_without_cross_terms"])
def test_wrong_custom_vjp_is_caught_in_reverse_mode_and_forward_mode_is_reported_skipped(name, examples):
    report = report_of(name, examples)
    assert "skipped" in report.modes["forward mode"] and "custom_vjp" in report.modes["forward mode"]
    assert "skipped" in str(report)
    modes = {m.strip() for f in report.failures for m in f.mode.split(",")}
    assert modes <= {"jacrev", "vjp"} and modes, str(report)


def test_jvp_rule_not_linear_in_its_tangent_is_right_on_basis_tangents_and_caught_on_random_ones(examples):
    report = report_of("square_jvp_not_linear", examples)
    modes = {m.strip() for f in report.failures if f.kind == "gradient" for m in f.mode.split(",")}
    assert "jvp" in modes, str(report)
    assert "jacfwd" not in modes, str(report)  # basis tangents: t**2 == t


def test_vjp_rule_not_linear_in_its_cotangent_is_right_on_basis_cotangents_and_caught_on_random_ones(examples):
    report = report_of("square_vjp_not_linear", examples)
    modes = {m.strip() for f in report.failures for m in f.mode.split(",")}
    assert modes == {"vjp"}, str(report)


def test_bug_of_relative_size_1e_4_is_caught_with_about_that_error(examples):
    report = report_of("sigmoid_off_by_1e_4", examples)
    assert all(5e-5 < f.error < 2e-4 for f in report.failures), str(report)
