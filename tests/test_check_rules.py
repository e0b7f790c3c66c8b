"""The custom rules of a function, read from its jaxpr and checked one by one (:mod:`gradcheck._check._rules`)."""

from __future__ import annotations

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from gradcheck._check import _rules as rules
from gradcheck._check._args import at_values
from gradcheck._check._rule_check import check_rules
from gradcheck._x64 import float64


def _mlp(params, x):
    h = jnp.tanh(params["W1"] @ x + params["b1"])
    return jax.nn.log_softmax(params["W2"] @ h + params["b2"])


MLP_PARAMS = {"W1": (4, 3), "b1": (4,), "W2": (2, 4), "b2": (2,)}


def _params(rng, shapes=MLP_PARAMS):
    return {k: rng.normal(size=s) for k, s in shapes.items()}


def test_plain_functions_hold_no_custom_rule():
    x = jnp.linspace(-1.0, 1.0, 5)
    assert rules.custom_rules(jnp.tanh, x) == ()  # tanh is one primitive
    assert rules.custom_rules(lambda x: jnp.sum(x**2), x) == ()
    # in JAX 0.10 log_softmax is a jit-wrapped function of max/sub/exp/log (the custom_jvp it had
    # in older versions is gone), so a dict-params MLP with tanh and log_softmax holds no rule; nor
    # do silu and logsumexp (plain jit functions)
    params = {k: jax.ShapeDtypeStruct(s, jnp.float32) for k, s in MLP_PARAMS.items()}
    assert rules.custom_rules(_mlp, params, jax.ShapeDtypeStruct((3,), jnp.float32)) == ()
    assert rules.custom_rules(jax.nn.silu, x) == ()
    assert rules.custom_rules(jax.nn.logsumexp, x) == ()
    assert rules.describe(()) == "no custom rule (jaxpr holds no custom_jvp/custom_vjp)"
    # relu is a custom_jvp (its derivative at 0 is fixed to 0); softplus calls logaddexp, a custom_jvp
    (relu,) = rules.custom_rules(jax.nn.relu, x)
    assert (relu.name, relu.kind, relu.where, relu.in_loop, relu.index) == ("relu", "custom_jvp", "top level", False, 0)
    assert [r.name for r in rules.custom_rules(jax.nn.softplus, x)] == ["logaddexp"]
    assert rules.describe((relu,)) == "1 custom rule: relu (custom_jvp)"


@jax.custom_jvp
def my_act(x):
    return x * jnp.tanh(x)


@my_act.defjvp
def _my_act_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    t = jnp.tanh(x)
    return x * t, dx * (t + x * (1 - t**2))


def test_a_user_custom_jvp_inside_jit_is_found_and_named():
    def layer(x):
        return my_act(2.0 * x) + 1.0

    @jax.jit
    def loss(x):
        return jnp.sum(layer(x) ** 2)

    def fn(x):
        return loss(x) + jnp.sum(jax.nn.relu(x))

    found = rules.custom_rules(fn, jnp.ones(3))
    assert [(r.name, r.kind, r.index) for r in found] == [("my_act", "custom_jvp", 0), ("relu", "custom_jvp", 1)]
    assert "jit" in found[0].where and "loss" in found[0].where and not found[0].in_loop
    assert rules.describe(found) == "2 custom rules: my_act (custom_jvp, inside jit 'loss'), relu (custom_jvp)"
    # the same rule called twice in one place is one rule
    assert len(rules.custom_rules(lambda x: my_act(x) + my_act(2 * x), jnp.ones(3))) == 1


def _attention_fwd_value(q, k, v):
    p = jax.nn.softmax(q @ k.T / jnp.sqrt(q.shape[-1]), axis=-1)
    return p @ v, p


def _attention_bwd(res, g, scale=1.0):
    q, k, v, p = res
    s = 1.0 / jnp.sqrt(q.shape[-1])
    dv = p.T @ g
    dp = g @ v.T
    ds = p * (dp - jnp.sum(dp * p, axis=-1, keepdims=True))
    return (scale * ds @ k * s, ds.T @ q * s, dv)


@jax.custom_vjp
def attention(q, k, v):
    return _attention_fwd_value(q, k, v)[0]


def _attention_fwd(q, k, v):
    out, p = _attention_fwd_value(q, k, v)
    return out, (q, k, v, p)


attention.defvjp(_attention_fwd, _attention_bwd)


def test_a_custom_vjp_attention_is_found_recorded_and_isolated():
    rng = np.random.default_rng(0)
    q, k, v = (rng.normal(size=(8, 4)).astype(np.float32) for _ in range(3))

    def fn(q, k, v):
        return jnp.sum(attention(q, k, v) ** 2)

    (rule,) = rules.custom_rules(fn, q, k, v)
    assert (rule.name, rule.kind, rule.where) == ("attention", "custom_vjp", "top level")
    ((r, inputs),) = rules.rule_inputs(fn, q, k, v)
    assert r == rule and [a.shape for a in inputs] == [(8, 4)] * 3
    assert all(isinstance(a, np.ndarray) for a in inputs)
    np.testing.assert_array_equal(inputs[0], q)
    apply = rules.rule_function(fn, rule, q, k, v)
    np.testing.assert_allclose(apply(*inputs), attention(q, k, v), rtol=1e-6)
    g = rng.normal(size=(8, 4)).astype(np.float32)
    got = jax.vjp(apply, *inputs)[1](jnp.asarray(g))
    want = _attention_bwd((q, k, v, _attention_fwd_value(q, k, v)[1]), g)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    with pytest.raises(TypeError, match="forward-mode"):  # as JAX's own custom_vjp
        jax.jvp(apply, tuple(inputs), tuple(inputs))


@jax.custom_vjp
def scaled_tanh(x):
    return 3.0 * jnp.tanh(x)


scaled_tanh.defvjp(
    lambda x: (3.0 * jnp.tanh(x), x),
    lambda x, g: (g * 3.0 * (1 - jnp.tanh(x) ** 2) * (1 + 1e-3),),  # wrong by a relative 1e-3
)


def test_check_rules_tells_the_wrong_rule_from_the_right_one():
    def fn(x, w):
        return jnp.sum(scaled_tanh(w @ x)) + jnp.sum(my_act(x))

    rng = np.random.default_rng(1)
    args = (rng.normal(size=(3,)), rng.normal(size=(2, 3)))
    verdicts = check_rules(fn, args, "float64", max_examples=8)
    by_name = {v.rule.name: v for v in verdicts}
    assert [v.rule.name for v in verdicts] == ["scaled_tanh", "my_act"]
    assert by_name["scaled_tanh"].ok is False, by_name["scaled_tanh"].detail
    assert "gradient" in by_name["scaled_tanh"].detail and "\n" not in by_name["scaled_tanh"].detail
    assert by_name["my_act"].ok is True, by_name["my_act"].detail


def test_a_rule_inside_scan_is_found_but_not_checked():
    def fn(x):
        def body(c, _):
            return my_act(c), None

        return lax.scan(body, x, None, length=3)[0]

    (rule,) = rules.custom_rules(fn, jnp.ones(2))
    assert rule.name == "my_act" and rule.in_loop and "scan" in rule.where
    assert rules.rule_inputs(fn, jnp.ones(2)) == [(rule, None)]
    (verdict,) = check_rules(fn, (np.ones(2),), "float32")
    assert verdict.ok is None and "loop" in verdict.detail and "iteration" in verdict.detail


def _nested(params, x, flag):
    """jit, cond, checkpoint, a loop and custom rules, a pytree argument and a closed-over array."""
    w = jnp.asarray(np.linspace(0.5, 1.5, 4))

    @jax.jit
    def inner(h):
        return jax.checkpoint(lambda z: my_act(z) * w[: z.shape[0]])(h)

    h = jnp.tanh(params["W1"] @ x + params["b1"])
    h = lax.cond(flag > 0, lambda z: jax.nn.relu(inner(z)), lambda z: my_act(-z), h)
    h = lax.fori_loop(0, 2, lambda i, z: jax.nn.softplus(z) * 0.5, h)
    return jax.nn.log_softmax(params["W2"] @ h + params["b2"]), jnp.sum(h)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_interpreter_computes_what_fn_computes(dtype):
    rng = np.random.default_rng(2)
    with float64() if dtype == "float64" else jax.enable_x64(False):
        params = {k: v.astype(dtype) for k, v in _params(rng).items()}
        x = rng.normal(size=3).astype(dtype)
        for flag in (1, 0):
            out, found = rules.interpret(_nested, params, x, np.int32(flag))
            want = _nested(params, x, np.int32(flag))
            for a, b in zip(out, want):
                assert a.dtype == b.dtype and a.shape == b.shape
                np.testing.assert_allclose(a, b, rtol=1e-12 if dtype == "float64" else 2e-6)
            recorded = {(r.name, r.where): i for r, i in found}
            # fori_loop with static bounds is a scan; softplus is a jit calling logaddexp
            assert list(recorded) == [
                ("my_act", "inside cond branch 0"),
                ("my_act", "inside cond branch 1 > jit 'inner' > checkpoint"),
                ("relu", "inside cond branch 1"),
                ("logaddexp", "inside scan > jit 'softplus'"),
            ]
            taken, untaken = ("cond branch 1", "cond branch 0") if flag else ("cond branch 0", "cond branch 1")
            for (name, where), inputs in recorded.items():
                if "scan" in where or untaken in where:
                    assert inputs is None, (name, where)
                else:
                    assert taken in where and inputs is not None and inputs[0].shape == (4,), (name, where)
    assert rules.custom_rules(_nested, params, x, np.int32(1)) == tuple(r for r, _ in found)


class _Fake:
    """A stand-in for ``gradcheck.check``: records what it was asked, answers as told."""

    def __init__(self, ok=True, raises=None):
        self.ok, self.raises, self.calls = ok, raises, []

    def __call__(self, fn, reference, *, args, radius, max_examples, seed, hypothesis_examples):
        self.calls.append((fn, args, radius))
        if self.raises:
            raise self.raises
        return types.SimpleNamespace(ok=self.ok, points_checked=3, modes={"reverse mode": "vjp"}, failures=[])


@jax.custom_jvp
def power(x, n):
    return x**n


@power.defjvp
def _power_jvp(primals, tangents):
    (x, n), (dx, _) = primals, tangents
    return x**n, n * x ** (n - 1) * dx


@jax.custom_jvp
def count(n):
    return n.astype(jnp.float32) * 2.0


count.defjvp(lambda p, t: (count(*p), jnp.zeros(p[0].shape, jnp.float32)))


def test_integer_inputs_are_held_fixed_and_failures_of_the_subcheck_are_verdicts():
    def fn(x, n):
        return power(x.reshape(2, 1, 3), n) + count(n)

    args = (np.full(6, 0.5, np.float32), np.int32(3))
    fake = _Fake()
    v_power, v_count = check_rules(fn, args, "float32", check=fake)
    assert v_power.ok is True and v_count.ok is None and "no float input" in v_count.detail
    ((sub, sub_args, radius),) = fake.calls
    # one input checked at its values (a 3-d array, in float32), n held fixed; perturbations of 1e-3
    (x, held) = sub_args
    assert x.shape == (2, 1, 3) and x.dtype == np.float32 and radius == 1e-3 and len(held) == 1
    at = at_values(sub, sub_args, radius)
    assert at.shapes == [{"": (6,)}] and at.domain == [{"": (-5e-4, 5e-4)}] and len(at.fixed) == 1, at
    np.testing.assert_allclose(sub(jnp.asarray(x), held), 0.125 * np.ones(6), rtol=1e-6)  # 3-d: flat
    with float64():  # the truth side of a float32 check calls it in float64
        assert sub(jnp.asarray(x, jnp.float64), held).dtype == jnp.float64
    # the function of the free inputs is one per (fn, rule, shapes): a later check of the rule
    # at other values (and the same held ones) finds its programs compiled
    check_rules(fn, (np.full(6, 0.25, np.float32), np.int32(3)), "float32", check=fake)
    assert fake.calls[1][0] is sub and fake.calls[1][1][1] == held
    np.testing.assert_array_equal(fake.calls[1][1][0], np.full((2, 1, 3), 0.25, np.float32))
    check_rules(fn, (np.full(6, 0.25, np.float32), np.int32(2)), "float32", check=fake)
    assert fake.calls[2][0] is sub and fake.calls[2][1][1] != held  # n is another held value
    (raised,) = [
        v for v in check_rules(fn, args, "float32", check=_Fake(raises=RuntimeError("boom"))) if v.rule.name == "power"
    ]
    assert raised.ok is None and "RuntimeError: boom" in raised.detail


def test_a_value_the_rule_closes_over_is_recorded_and_held_fixed():
    def outer(x, w, captured):
        @jax.custom_vjp
        def scale(y):  # closes over w, a tracer of fn: it becomes the rule's first input (a const)
            return y * w

        scale.defvjp(lambda y: (y * 2.0, None), lambda _, g: (g * 2.0,))

        @jax.custom_vjp
        def spoil(y):
            return y * captured

        spoil.defvjp(lambda y: (y * captured, None), lambda _, g: (g * captured,))
        return scale(x) + spoil(x)

    args = (np.ones(3, np.float32), np.full(3, 2.0, np.float32), np.full(3, 3.0, np.float32))
    (scale, inputs), (spoil, _) = rules.rule_inputs(outer, *args)
    assert scale.name == "scale" and [a.tolist() for a in inputs] == [[2.0] * 3, [1.0] * 3]
    fake = _Fake()
    v_scale, v_spoil = check_rules(outer, args, "float32", check=fake)
    ((sub, (y, held), _),) = fake.calls
    assert v_scale.ok is True and y.shape == (3,) and len(held) == 1  # only y: the const w is held fixed
    np.testing.assert_allclose(sub(jnp.asarray(y), held), 2.0 * np.ones(3))  # at y = 1: y * w
    np.testing.assert_allclose(jax.vjp(lambda y: sub(y, held), jnp.zeros(3))[1](jnp.ones(3))[0], 2.0 * np.ones(3))
    # spoil's backward closes over fn's own tracer: it cannot run outside fn, and says so
    assert v_spoil.ok is None and "could not be isolated" in v_spoil.detail, v_spoil.detail
