"""Models with no closed form, checked at their own sizes and at the user's own values.

* a 38,410-parameter MLP in float32 passes (the rounding of a correct float32 contraction of
  5,120 terms is no failure; it was a false alarm where the softmax cancels to 0);
* a ``custom_vjp`` attention passes at (64, 32), and the same with its softmax backward off by a
  relative 1e-3 fails, naming the leaf and the rule;
* ``args=``: an Equinox module and a Flax params dict checked at their values, static fields held
  fixed; the same models with a wrong ``custom_jvp`` activation fail and name it;
* bad ``args=`` input gets an error naming the argument, before any work.
"""

from __future__ import annotations

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradcheck
from gradcheck.bench import attention_case, mlp_case

# ---- a plain MLP at model size -----------------------------------------------------------


def test_a_38k_parameter_mlp_in_float32_raises_no_false_alarm():
    # the MLP of the models benchmark: sum(log_softmax(W2 tanh(W1 x + b1) + b2)), params in a dict
    mlp, shapes = mlp_case(512, wrong=False)  # 512 x 64 + 512 + 10 x 512 + 10 = 38,410 parameters
    assert sum(int(np.prod(s)) for s in shapes[0].values()) == 38_410
    r = gradcheck.check(mlp, None, shapes=shapes, domain=(-1.0, 1.0), dtype="float32", max_examples=100)
    assert r.ok, str(r)


def test_at_a_symmetric_point_the_rounding_of_a_correct_float32_contraction_is_no_failure():
    """Every logit equal: the true JVP along W2 is ~0 and float32 keeps the rounding of 5,120
    terms of size 1.  Checked at exactly that point (``args=``, the values themselves first)."""
    params = {
        "W1": -np.ones((512, 64), np.float32) / 8,
        "b1": np.zeros(512, np.float32),
        "W2": -np.ones((10, 512), np.float32) / 8,
        "b2": np.zeros(10, np.float32),
    }
    x = -np.ones(64, np.float32)
    mlp, _ = mlp_case(512, wrong=False)
    r = gradcheck.check(mlp, None, args=(params, x), radius=1e-3, max_examples=20)
    assert r.ok, str(r)


# ---- a custom_vjp attention --------------------------------------------------------------


def test_a_correct_custom_vjp_attention_passes_and_a_wrong_backward_is_named():
    # the attention of the models benchmark: its backward written by hand, the wrong one with the
    # softmax backward's sum(dp * p) off by a relative 1e-3
    right, shapes = attention_case(64, 32, wrong=False)
    ok = gradcheck.check(right, None, shapes=shapes, domain=(-1.0, 1.0), dtype="float32", max_examples=100)
    assert ok.ok, str(ok)
    wrong, _ = attention_case(64, 32, wrong=True)
    bad = gradcheck.check(wrong, None, shapes=shapes, domain=(-1.0, 1.0), dtype="float32", max_examples=100)
    assert not bad.ok, str(bad)
    f = bad.failures[0]
    assert f.argument_name in ("q", "k") and f.entry.startswith(f"random cotangent pulled back to {f.argument_name}[")
    # fn is the rule itself: named as such, without a sub-check that would repeat this one
    assert f.category == "custom rule" and "fn is its custom rule attention (custom_vjp) itself" in f.diagnosis


# ---- args=: Equinox and Flax models at their own values ----------------------------------


@jax.custom_jvp
def swish(x):
    return x * jax.nn.sigmoid(x)


@swish.defjvp
def _swish_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    s = jax.nn.sigmoid(x)
    return x * s, (s + x * s * (1 - s)) * t


@jax.custom_jvp
def swish_wrong(x):
    return x * jax.nn.sigmoid(x)


@swish_wrong.defjvp
def _swish_wrong_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    s = jax.nn.sigmoid(x)
    return x * s, s * t  # the x s (1 - s) term is missing


def eqx_loss(model, x):
    return jnp.sum(jax.nn.log_softmax(model(x)))


def eqx_model(activation):
    return eqx.nn.MLP(in_size=8, out_size=3, width_size=16, depth=2, activation=activation, key=jax.random.PRNGKey(0))


X8 = np.asarray(jax.random.normal(jax.random.PRNGKey(1), (8,)))


def test_an_equinox_mlp_is_checked_at_its_own_values_with_its_static_fields_held_fixed():
    r = gradcheck.check(eqx_loss, None, args=(eqx_model(swish), X8), max_examples=30)
    assert r.ok, str(r)
    assert r.dtype == "float32"  # the module's own dtype
    assert "model.layers[0].weight" in r.at_values and "x" in r.leaves
    assert "held fixed: model.activation (function swish)" in r.at_values, r.at_values
    assert "at the given args: 7 leaves differentiated" in str(r)


def test_an_equinox_mlp_with_a_wrong_custom_jvp_activation_fails_and_names_it():
    model = eqx_model(swish_wrong)
    r = gradcheck.check(eqx_loss, None, args=(model, X8), max_examples=30)
    assert not r.ok, str(r)
    f = r.failures[0]
    assert f.category == "custom rule" and "custom rule swish_wrong (custom_jvp) is wrong on its own" in f.diagnosis
    # the failing input is the leaves' values at the failing point, not the perturbation
    (w,) = [v for n, v in zip(f.input_names, f.input) if n == "model.layers[0].weight"]
    assert np.max(np.abs(w - np.asarray(model.layers[0].weight))) <= 0.1 * np.sqrt(np.mean(w**2)) * 1.01
    # the whole failing input is in a file that the replay line loads back into the args
    assert f.input_file.endswith(".npz") and f"gradcheck.load_args({f.input_file!r}, args)" in r.replay()
    again, x_again = gradcheck.load_args(f.input_file, (model, X8))
    np.testing.assert_array_equal(np.asarray(again.layers[0].weight), w)
    assert again.activation is swish_wrong and isinstance(x_again, np.ndarray)


class Classifier(nn.Module):
    activation: object

    @nn.compact
    def __call__(self, x):
        return nn.Dense(3)(self.activation(nn.Dense(16)(x)))


@pytest.mark.parametrize("activation", [swish, swish_wrong])
def test_a_flax_params_dict_is_checked_at_its_values(activation):
    model = Classifier(activation)
    params = model.init(jax.random.PRNGKey(0), X8)

    def loss(params, x):
        return jnp.sum(jax.nn.log_softmax(model.apply(params, x)))

    r = gradcheck.check(loss, None, args=(params, X8), max_examples=30)
    assert "params['params']['Dense_0']['kernel']" in r.at_values
    if activation is swish:
        assert r.ok, str(r)
    else:
        assert not r.ok and "custom rule swish_wrong (custom_jvp) is wrong on its own" in r.failures[0].diagnosis


def test_integer_leaves_and_keys_are_held_fixed_and_the_values_themselves_are_checked():
    def fn(state, x):
        return jnp.sum(jnp.sin(state["w"] * x) * state["step"]) + jax.random.uniform(state["key"])

    state = {"w": np.float64([0.5, -1.5]), "step": np.int32(3), "key": jax.random.PRNGKey(7)}
    r = gradcheck.check(fn, None, args=(state, np.float64([1.0, 2.0])), max_examples=10)
    assert r.ok and r.dtype == "float64", str(r)
    assert "state['step'] (int32 array)" in r.at_values and "state['key'] (uint32 array)" in r.at_values


@jax.custom_jvp
def sin_wrong_beyond_5(x):
    return jnp.sin(x)


@sin_wrong_beyond_5.defjvp
def _sin_wrong_beyond_5(primals, tangents):
    (x,), (t,) = primals, tangents
    return jnp.sin(x), jnp.where(jnp.abs(x) > 5, 1.01, 1.0) * jnp.cos(x) * t


def _sum_sin(w, scale):
    return jnp.sum(sin_wrong_beyond_5(w * scale))


def _xla_compilations(monkeypatch) -> list:
    """The XLA compilations from here on (JAX's own compile step, counted)."""
    from jax._src import compiler

    seen: list = []
    real = compiler.backend_compile_and_load

    def counted(*a, **k):
        seen.append(1)
        return real(*a, **k)

    monkeypatch.setattr(compiler, "backend_compile_and_load", counted)
    return seen


def test_a_second_args_check_at_other_values_compiles_nothing_and_runs_at_those_values(monkeypatch):
    """The values reach the programs as their points, not as constants compiled into them: the
    same fn and structure at new values is warm, and is checked at the new values (a rule wrong
    only beyond |x| = 5 passes at values near 1 and fails at values near 20, where the failure's
    input is)."""
    w1 = np.float32([0.5, -1.0, 1.5])
    first = gradcheck.check(_sum_sin, None, args=(w1, 1.0), max_examples=20)
    assert first.ok, str(first)
    seen = _xla_compilations(monkeypatch)
    again = gradcheck.check(_sum_sin, None, args=(w1 + 0.25, 1.0), max_examples=20)
    assert again.ok and not seen, (str(again), len(seen))
    far = gradcheck.check(_sum_sin, None, args=(w1 * 0 + 20.0, 1.0), max_examples=20)
    assert not far.ok, str(far)
    (w,) = far.failures[0].input[:1]
    assert np.all(np.abs(np.asarray(w) - 20.0) <= 0.1 * 20.0 * 1.01), w


def test_a_fixed_leaf_of_another_value_is_another_function():
    """The fixed leaves are held in the function of the values: one of another value (a scale
    that moves the inputs past the wrong part of the rule) is checked with that value."""
    w = np.float32([0.5, -1.0, 1.5])
    assert gradcheck.check(_sum_sin, None, args=(w, 1.0), max_examples=20).ok
    r = gradcheck.check(_sum_sin, None, args=(w, 8.0), max_examples=20)
    assert not r.ok, str(r)
    from gradcheck._check._args import at_values

    same, other = at_values(_sum_sin, (w, 1.0)), at_values(_sum_sin, (w + 1, 1.0))
    assert same.fn is other.fn and at_values(_sum_sin, (w, 8.0)).fn is not same.fn
    assert at_values(_sum_sin, (w, np.int32(1))).fn is not same.fn  # another type of leaf
    assert at_values(_sum_sin, (w.astype(np.float64), 1.0)).fn is not same.fn  # another dtype
    key1 = at_values(_sum_sin, (w, jax.random.key(1))).fn  # a PRNG key, by its data
    assert key1 is at_values(_sum_sin, (w, jax.random.key(1))).fn
    assert key1 is not at_values(_sum_sin, (w, jax.random.key(2))).fn

    class Unhashable:  # a fixed leaf of no hash: a function for that call alone, checked all the same
        __hash__ = None  # type: ignore[assignment]

        def __init__(self, k):
            self.k = k

    class ArrayEq:  # a fixed leaf whose == gives an array, as array-likes do
        def __init__(self, k):
            self.k = k

        def __hash__(self):
            return 1

        def __eq__(self, other):
            return np.array([True, False])

    def scaled(w, c):
        return jnp.sum(sin_wrong_beyond_5(w * c.k))

    for leaf in (Unhashable, ArrayEq):
        assert at_values(scaled, (w, leaf(1.0))).fn is not at_values(scaled, (w, leaf(1.0))).fn
        assert gradcheck.check(scaled, None, args=(w, leaf(1.0)), max_examples=10).ok
        assert not gradcheck.check(scaled, None, args=(w, leaf(8.0)), max_examples=10).ok


def test_the_points_are_the_values_plus_the_perturbations_rounded_as_fn_adds_them(monkeypatch):
    """``Engine.absolute``: what an ``args=`` check runs fn at is float32's own sum of the value
    and the perturbation (as fn computed ``value + delta`` before the values became the points),
    a few rows at a time; nothing moves without ``args=``."""
    import types

    from gradcheck._check._engine import Engine
    from gradcheck.oracles import _batched

    rng = np.random.default_rng(4)
    v = (rng.normal(size=300) * 10.0 ** rng.integers(-3, 4, 300)).astype(np.float32)
    d = (rng.normal(size=(7, 300)) * 10.0 ** rng.integers(-9, 1, (7, 300))).astype(np.float32)
    eng = types.SimpleNamespace(spec=types.SimpleNamespace(origin=v.astype(np.float64)))
    want = np.asarray(jnp.asarray(v)[None] + jnp.asarray(d))
    monkeypatch.setattr(_batched, "BLOCK_ENTRIES", 600)  # two rows a block
    got = Engine.absolute(eng, d)
    assert got.dtype == np.float32 and np.array_equal(got, want) and not np.array_equal(got, d)
    assert Engine.absolute(types.SimpleNamespace(spec=types.SimpleNamespace(origin=None)), d) is d


def test_bad_args_get_a_clear_error_before_any_work():
    x = np.ones(3, np.float32)
    with pytest.raises(TypeError, match="args must be a tuple"):
        gradcheck.check(jnp.sin, None, args=x)
    with pytest.raises(TypeError, match="either args= .* or shapes="):
        gradcheck.check(jnp.sin, None, args=(x,), shapes=[(3,)])
    with pytest.raises(TypeError, match="reference=None"):
        gradcheck.check(jnp.sin, lambda v: v, args=(x,))
    with pytest.raises(ValueError, match="radius must be a finite number > 0"):
        gradcheck.check(jnp.sin, None, args=(x,), radius=-1.0)
    with pytest.raises(TypeError, match="radius= is the perturbation radius of args="):
        gradcheck.check(jnp.sin, None, shapes=[(3,)], radius=0.1)
    with pytest.raises(TypeError, match="no floating-point array"):
        gradcheck.check(lambda n: n * 1.0, None, args=(np.arange(3),))
    with pytest.raises(TypeError, match=r"mixes single and double .*a is float32, b is float64"):
        gradcheck.check(lambda a, b: a + b, None, args=(x, np.ones(3)))
    with pytest.raises(TypeError, match=r"a is complex64, b is float64"):
        gradcheck.check(lambda a, b: a + b, None, args=(x.astype(np.complex64), np.ones(3)))
    with pytest.raises(TypeError, match=r"float32, float64, complex64 or complex128 .* is float16"):
        gradcheck.check(jnp.sin, None, args=(x.astype(np.float16),))
    with pytest.raises(ValueError, match="leave dtype out"):
        gradcheck.check(jnp.sin, None, args=(x,), dtype="float64")
