"""The engine at the sizes users write: 1,024 inputs, pytree parameters, order 2.

At this size the reference's derivatives are not expanded entry by entry (the ``probes`` path):
they are JVPs, VJPs and Hessian-vector products of its values, by automatic differentiation of
the SymPy DAG in NumPy.  Each correct function passes; a rule wrong in one entry out of 1,024
by a relative 1e-3 fails and names that entry; a wrong rule in one leaf of a pytree names the
leaf.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import gradcheck
from gradcheck.models.references import layer_norm_ref

N = 1024
EXAMPLES = 40  # points per check: each point probes every entry at once


def logsumexp_ref(a):
    return sp.log(sum(a.applyfunc(sp.exp)))


def softmax_ref(a):
    e = a.applyfunc(sp.exp)
    return e / sum(e)


def layer_norm(x):
    return (x - x.mean()) / jnp.sqrt(x.var() + 1e-5)


def dense(params, x):
    return jnp.tanh(params["W"] @ x + params["b"])


def dense_ref(params, x):
    return (params["W"] * x + params["b"]).applyfunc(sp.tanh)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_logsumexp_at_1024_passes_at_order_2(dtype):
    r = gradcheck.check(
        jax.nn.logsumexp,
        logsumexp_ref,
        shapes=[(N,)],
        domain=(-10.0, 10.0),
        order=2,
        dtype=dtype,
        max_examples=EXAMPLES,
    )
    assert r.ok, str(r)
    assert r.path == "probes" and "hvp fwd-over-rev" in r.modes["second order"]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_softmax_and_layer_norm_at_1024_pass(dtype):
    for fn, ref in ((jax.nn.softmax, softmax_ref), (layer_norm, layer_norm_ref)):
        r = gradcheck.check(fn, ref, shapes=[(N,)], domain=(-10.0, 10.0), dtype=dtype, max_examples=EXAMPLES)
        assert r.ok, str(r)
        assert r.path == "probes"


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_dense_layer_with_a_dict_of_parameters_passes(dtype):
    shapes = [{"W": (4, 256), "b": (4,)}, (256,)]
    r = gradcheck.check(dense, dense_ref, shapes=shapes, domain=(-1.0, 1.0), dtype=dtype, max_examples=EXAMPLES)
    assert r.ok, str(r)
    assert r.leaves == ["params['W']", "params['b']", "x"]


@jax.custom_jvp
def logsumexp_wrong_at_617(x):
    return jax.nn.logsumexp(x)


@logsumexp_wrong_at_617.defjvp
def _lse_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    g = jax.nn.softmax(x).at[617].multiply(1.001)  # one entry of 1,024 wrong by 1e-3
    return jax.nn.logsumexp(x), g @ t


@jax.custom_jvp
def softplus_wrong_at_617(x):
    return jax.nn.softplus(x)


@softplus_wrong_at_617.defjvp
def _softplus_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return jax.nn.softplus(x), (jax.nn.sigmoid(x) * t).at[617].multiply(1.001)


def softplus_ref(a):
    return a.applyfunc(lambda v: sp.log(1 + sp.exp(v)))


# In float32 the gradient entries of a logsumexp over 1,024 logits are ~1e-3, and 1e-3 of that is
# below float32's floor (atol 1e-5): the float32 case uses an elementwise map with O(1) entries.
@pytest.mark.parametrize(
    "fn, ref, dtype",
    [
        (logsumexp_wrong_at_617, logsumexp_ref, "float64"),
        (softplus_wrong_at_617, softplus_ref, "float64"),
        (softplus_wrong_at_617, softplus_ref, "float32"),
    ],
)
def test_a_rule_wrong_in_one_entry_of_1024_fails_and_names_it(fn, ref, dtype):
    r = gradcheck.check(fn, ref, shapes=[(N,)], domain=(-10.0, 10.0), dtype=dtype, max_examples=EXAMPLES)
    assert not r.ok
    named = [f for f in r.failures if "x[617]" in f.entry]
    assert named and all(f.kind == "gradient" for f in named), str(r)
    assert "x[617]" in str(r)


@jax.custom_jvp
def dense_wrong_in_b(params, x):
    return dense(params, x)


@dense_wrong_in_b.defjvp
def _dense_jvp(primals, tangents):
    (p, x), (tp, tx) = primals, tangents
    y = dense(p, x)
    dz = tp["W"] @ x + p["W"] @ tx + 1.01 * tp["b"]  # the bias's rule is 1% off
    return y, (1 - y**2) * dz


def test_a_pytree_function_wrong_in_one_leaf_names_the_leaf():
    shapes = [{"W": (4, 64), "b": (4,)}, (64,)]
    r = gradcheck.check(dense_wrong_in_b, dense_ref, shapes=shapes, domain=(-1.0, 1.0), max_examples=EXAMPLES)
    assert not r.ok
    names = {f.argument_name for f in r.failures if f.argument is not None}
    assert names == {"params['b']"}, str(r)
    assert "params['b'][" in str(r) and "params['W']" not in "".join(f.entry for f in r.failures)


def test_pytree_output_and_per_leaf_domain():
    def stats(x):
        return {"mean": jnp.mean(x), "sq": x**2}

    def stats_ref(a):
        return {"mean": sum(a) / a.shape[0], "sq": a.applyfunc(lambda v: v**2)}

    r = gradcheck.check(stats, stats_ref, shapes=[(3,)], max_examples=30)
    assert r.ok, str(r)
    shapes = [{"W": (2, 3), "b": (2,)}, (3,)]
    r = gradcheck.check(
        dense, dense_ref, shapes=shapes, max_examples=30, domain=[{"W": (-1.0, 1.0), "b": (0.0, 2.0)}, (-3.0, 3.0)]
    )
    assert r.ok, str(r)
    assert r.domain[-2] == (0.0, 2.0)
    with pytest.raises(ValueError, match=r"domain\[0\] must be \(lo, hi\) or a pytree of \(lo, hi\) pairs"):
        gradcheck.check(dense, dense_ref, shapes=shapes, domain=[{"W": (-1.0, 1.0)}, (-3.0, 3.0)])


def test_the_same_wrong_rule_is_caught_on_both_paths():
    # the small path (entries) and the probes path agree on a wrong rule
    @jax.custom_jvp
    def f(x):
        return jnp.sin(x)

    f.defjvp(lambda p, t: (jnp.sin(p[0]), jnp.cos(p[0]) * t[0] * (1 + 1e-3 * (p[0] > 1))))
    ref = lambda a: a.applyfunc(sp.sin)
    for path in ("entries", "probes"):
        r = gradcheck.check(f, ref, shapes=[(3,)], domain=(-3.0, 3.0), max_examples=60, path=path)
        assert not r.ok and r.path == path, str(r)
        assert {fl.kind for fl in r.failures} == {"gradient"}
    r = gradcheck.check(jnp.sin, ref, shapes=[(3,)], domain=(-3.0, 3.0), max_examples=60, path="probes")
    assert r.ok, str(r)


def test_the_report_says_which_path_ran():
    small = gradcheck.check(jnp.sin, lambda a: a.applyfunc(sp.sin), shapes=[(3,)], max_examples=20)
    assert small.path == "entries" and "path entries" in str(small)
    big = gradcheck.check(jnp.sin, lambda a: a.applyfunc(sp.sin), shapes=[(64,)], max_examples=20)
    assert big.path == "probes" and "path probes" in str(big)
    assert big.record()["path"] == "probes"
    with pytest.raises(ValueError, match="path must be one of"):
        gradcheck.check(jnp.sin, sp.sin, shapes=[()], path="fast")


def test_second_order_probe_catches_a_wrong_hessian():
    # a first derivative right everywhere whose own derivative is wrong: only order 2 sees it
    @jax.custom_jvp
    def g(x):
        return jnp.sum(jnp.sin(x))

    @g.defjvp
    def _g(p, t):
        (x,), (tx,) = p, t
        return g(x), jnp.sum(cos_wrong_slope(x) * tx)

    @jax.custom_jvp
    def cos_wrong_slope(x):
        return jnp.cos(x)

    cos_wrong_slope.defjvp(lambda p, t: (jnp.cos(p[0]), -1.01 * jnp.sin(p[0]) * t[0]))
    ref = lambda a: sum(a.applyfunc(sp.sin))
    r = gradcheck.check(g, ref, shapes=[(64,)], domain=(-3.0, 3.0), order=2, max_examples=EXAMPLES)
    assert not r.ok and {f.kind for f in r.failures} == {"second-derivative"}, str(r)
    assert np.isfinite(r.failures[0].expected)
