"""The batching rule checked apart, and the modes JAX cannot run skipped, not failed.

Every point of a check runs under ``vmap``: a wrong batching rule (a ``custom_vmap`` rule, a
``pure_callback`` whose ``vmap_method`` promises what the callback does not do) corrupts the
numbers the check judges, and with ``reference=None`` the float64 truth as well.  The check
compares vmap(fn) with fn called point by point first; where they differ it fails with
category ``batching``, naming the rule, and runs the rest point by point, so that no derivative
rule is blamed for it.  A correct function pays nothing for it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp
from jax.custom_batching import custom_vmap

import gradcheck


# --------------------------------------------------------------------------------------------
# custom_vmap: a rule off by a relative 1e-3, and a right one
# --------------------------------------------------------------------------------------------
@custom_vmap
def scaled_sin(x):
    return jnp.sin(x)


@scaled_sin.def_vmap
def scaled_sin_rule(axis_size, in_batched, x):  # batched values off by a relative 1e-3
    return jnp.sin(x) * (1 + 1e-3), in_batched[0]


@jax.custom_jvp
def sin_wrong_batching(x):
    return scaled_sin(x)


@sin_wrong_batching.defjvp
def _sin_wrong_batching_jvp(primals, tangents):  # a right derivative rule
    (x,), (t,) = primals, tangents
    return sin_wrong_batching(x), jnp.cos(x) * t


@custom_vmap
def batched_sin(x):
    return jnp.sin(x)


@batched_sin.def_vmap
def batched_sin_rule(axis_size, in_batched, x):  # right
    return jnp.sin(x), in_batched[0]


def sin_right_batching(x):  # no custom_jvp: JAX has no reverse mode through a custom_vmap
    return batched_sin(x)


def _batching(report):
    return [f for f in report.failures if f.category == "batching"]


@pytest.mark.parametrize("reference", [None, sp.sin], ids=["reference=None", "sympy"])
def test_a_wrong_custom_vmap_rule_fails_as_batching_and_no_derivative_rule_is_blamed(reference):
    r = gradcheck.check(sin_wrong_batching, reference, shapes=[()], domain=(-3.0, 3.0), max_examples=60)
    assert not r.ok
    (f,) = r.failures  # the batching failure alone: the derivatives, judged point by point, are right
    assert f.category == "batching" and f.kind == "value", str(r)
    assert "the batching rule of scaled_sin (custom_vmap, rule scaled_sin_rule) is wrong" in f.diagnosis
    assert abs(f.error - 1e-3) < 1e-5 and f.points == 4
    assert r.modes["batching"].startswith("WRONG") and "[batching]" in str(r)
    assert all(f.category not in ("wrong rule", "custom rule") for f in r.failures)


def test_a_right_custom_vmap_rule_passes_with_reverse_mode_skipped():
    r = gradcheck.check(sin_right_batching, None, shapes=[()], domain=(-3.0, 3.0), max_examples=60)
    assert r.ok, str(r)
    assert r.modes["reverse mode"].startswith("skipped") and "custom_vmap (batched_sin)" in r.modes["reverse mode"]
    assert "jvp" in r.modes["forward mode"] and "agrees" in r.modes["batching"]
    # with a SymPy reference and order 2: forward-over-forward runs, the reverse Hessians are skipped
    r2 = gradcheck.check(sin_right_batching, sp.sin, shapes=[()], domain=(-3.0, 3.0), order=2, max_examples=40)
    assert r2.ok and r2.modes["second order"] == "fwd-over-fwd", str(r2)
    assert r2.modes["hessian rev-over-rev"].startswith("skipped")


def test_strict_makes_a_skipped_mode_a_failure():
    r = gradcheck.check(sin_right_batching, None, shapes=[()], domain=(-3.0, 3.0), max_examples=40, strict=True)
    (f,) = r.failures
    assert f.category == "raised" and f.mode == "vjp" and "skipped" in f.message, str(r)
    assert "custom_vmap" in f.message


def count_down(x):  # reverse mode through a while_loop: JAX's limit, not fn's
    return jax.lax.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, jnp.sin(c[1])), (0, x))[1]


def test_reverse_mode_through_a_while_loop_is_skipped():
    r = gradcheck.check(count_down, None, shapes=[()], domain=(-2.0, 2.0), max_examples=40)
    assert r.ok and r.modes["reverse mode"].startswith("skipped") and "while_loop" in r.modes["reverse mode"], str(r)


# --------------------------------------------------------------------------------------------
# pure_callback: a vmap_method the callback does not honour, and one it does
# --------------------------------------------------------------------------------------------
def _normalize_one(x):  # right for one point only: it reduces over everything it is given
    return np.asarray(x / np.sqrt(np.sum(x * x)), x.dtype)


def _normalize_rows(x):  # right for a batch too: it reduces over the last axis
    return np.asarray(x / np.sqrt(np.sum(x * x, axis=-1, keepdims=True)), x.dtype)


def _callback_normalize(host, method):
    @jax.custom_jvp
    def normalize(x):
        return jax.pure_callback(host, jax.ShapeDtypeStruct(x.shape, x.dtype), x, vmap_method=method)

    @normalize.defjvp
    def _jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        y = normalize(x)
        return y, (t - y * jnp.dot(y, t)) / jnp.sqrt(jnp.dot(x, x))

    return normalize


normalize_broadcast_wrong = _callback_normalize(_normalize_one, "broadcast_all")
normalize_expand_wrong = _callback_normalize(_normalize_one, "expand_dims")
normalize_broadcast_right = _callback_normalize(_normalize_rows, "broadcast_all")


def normalize_ref(x):
    return x / sp.sqrt((x.T * x)[0])


@pytest.mark.parametrize(
    "fn, method",
    [(normalize_broadcast_wrong, "broadcast_all"), (normalize_expand_wrong, "expand_dims")],
    ids=["broadcast_all", "expand_dims"],
)
def test_a_callback_with_a_wrong_vmap_method_fails_as_batching(fn, method):
    r = gradcheck.check(fn, normalize_ref, shapes=[(3,)], domain=(0.5, 2.0), max_examples=40)
    (f,) = r.failures
    assert f.category == "batching" and f"_normalize_one (pure_callback, vmap_method={method!r})" in f.diagnosis, str(r)
    assert "value" in f.mode and "jvp" in f.mode  # the JVP uses the callback's value: wrong under vmap too


def test_a_callback_with_a_right_vmap_method_passes():
    for reference in (normalize_ref, None):
        r = gradcheck.check(normalize_broadcast_right, reference, shapes=[(3,)], domain=(0.5, 2.0), max_examples=40)
        assert r.ok and "agrees" in r.modes["batching"], str(r)


# --------------------------------------------------------------------------------------------
# ordinary functions: JAX's own batching rules, nothing compared, nothing compiled
# --------------------------------------------------------------------------------------------
def mlp(W1, b1, W2, x):
    return jnp.tanh(W2 @ jnp.tanh(W1 @ x + b1))


@pytest.mark.parametrize("reference", [sp.sin, None], ids=["sympy", "reference=None"])
def test_an_ordinary_function_is_unaffected(reference):
    r = gradcheck.check(jnp.sin, reference, shapes=[()], max_examples=40)
    assert r.ok and not _batching(r) and "JAX's own batching rules" in r.modes["batching"], str(r)


def test_a_small_mlp_is_unaffected():
    shapes = [(4, 3), (4,), (2, 4), (3,)]
    r = gradcheck.check(mlp, None, shapes=shapes, domain=(-1.0, 1.0), dtype="float32", max_examples=40)
    assert r.ok and not _batching(r) and "not compared" in r.modes["batching"], str(r)
