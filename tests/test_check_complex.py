"""Complex functions: ``dtype="complex64"/"complex128"``, checked as the real function of the
parts (:mod:`gradcheck._check._complex`), against a SymPy reference of complex inputs and with
``reference=None``; wrong rules off the real line and wrong conjugations are caught."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import gradcheck
from gradcheck._check._complex import _parts, realify

DTYPES = ["complex128", "complex64"]


def loss(z):
    return jnp.sum(jnp.abs(jnp.sin(z)) ** 2)


def loss_ref(z):
    return sum(sp.Abs(sp.sin(v)) ** 2 for v in z)


def csin(z):
    return jnp.sin(z)


def csin_ref(z):
    return z.applyfunc(sp.sin)


@jax.custom_jvp
def sin_conj_rule(z):
    return jnp.sin(z)


@sin_conj_rule.defjvp
def _sin_conj_jvp(primals, tangents):
    (z,), (dz,) = primals, tangents
    return jnp.sin(z), jnp.cos(jnp.conj(z)) * dz  # right on the real line only


def wrong_sin(z):
    return sin_conj_rule(z)


def wrong_loss(z):
    return jnp.sum(jnp.abs(sin_conj_rule(z)) ** 2)


def _exp_vjp(conjugate):
    @jax.custom_vjp
    def cexp(z):
        return jnp.exp(z)

    # JAX's vjp(c) = c df/dz for a holomorphic f: no conjugate (the wrong one takes c conj(e^z))
    cexp.defvjp(lambda z: (jnp.exp(z), jnp.exp(z)), lambda e, c: (c * (jnp.conj(e) if conjugate else e),))
    return cexp


def _check(fn, ref, dtype, **kw):
    return gradcheck.check(fn, ref, shapes=[(3,)], domain=(-2, 2), dtype=dtype, max_examples=40, seed=0, **kw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ref", [loss_ref, None], ids=["sympy", "numerical"])
def test_a_real_loss_of_complex_inputs_passes(dtype, ref):
    r = _check(loss, ref, dtype)
    assert r.ok, r
    assert r.dtype == dtype
    assert f"dtype={dtype!r}" in r.replay() and "shapes=[(3,)]" in r.replay()


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_holomorphic_map_passes_against_its_complex_sympy_reference(dtype):
    r = _check(csin, csin_ref, dtype)
    assert r.ok, r
    assert "jvp" in r.modes["forward mode"] and "vjp" in r.modes["reverse mode"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn, ref", [(wrong_sin, csin_ref), (wrong_loss, None)], ids=["map-sympy", "loss-numerical"])
def test_a_rule_right_on_the_real_line_and_wrong_off_it_fails(dtype, fn, ref):
    r = _check(fn, ref, dtype)
    assert not r.ok
    f = r.failures[0]
    assert f.category == "custom rule" and "sin_conj_rule" in f.diagnosis
    assert f.argument_name in ("Re z", "Im z")  # the part, in the complex function's terms
    assert "['re']" not in str(f) and "['im']" not in str(f)
    (z,) = f.input  # printed as the complex argument
    assert np.iscomplexobj(z) and z.shape == (3,)
    # on the real line the rule is right: the failing input has a nonzero imaginary part
    assert np.any(np.imag(z) != 0)


def test_a_custom_vjp_with_a_wrong_conjugation_is_caught_and_the_right_one_passes():
    wrong = _check(_exp_vjp(conjugate=True), None, "complex128")
    assert not wrong.ok
    assert wrong.failures[0].category == "custom rule" and "cexp" in wrong.failures[0].diagnosis
    assert "skipped" in wrong.modes["forward mode"]  # a custom_vjp: reverse mode only
    right = _check(_exp_vjp(conjugate=False), None, "complex64")
    assert right.ok, right


def test_log_is_judged_beside_its_branch_cut_not_on_it():
    r = _check(jnp.log, lambda z: z.applyfunc(sp.log), "complex128")
    assert r.ok, r
    assert "kink" in r.kinks and r.kink_points > 0  # the points on the real axis are not judged


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_passes_with_the_numerical_truth_beside_its_pole(dtype):
    # the range points put parts of 1e-38 and below next to the pole at 0: the differences'
    # steps straddle it there, and such points are not judged (oracles.numerical, one-sided)
    r = _check(jnp.log, None, dtype)
    assert r.ok, r
    assert r.unjudged_points > 0


def test_the_accuracy_table_prints_where_it_measured_as_complex_inputs():
    import json

    r = _check(csin, csin_ref, "complex128")
    assert r.accuracy and all(len(row["input_shown"]) == 3 for row in r.accuracy)
    z = complex(r.accuracy[0]["input_shown"][0])
    re_, im_ = r.accuracy[0]["input"][3], r.accuracy[0]["input"][0]  # the real check's order: Im z, then Re z
    assert z == pytest.approx(complex(re_, im_), rel=1e-5, abs=1e-9)
    assert "j" in r.accuracy_table().splitlines()[2]
    json.dumps(r.record())  # still plain JSON


def test_the_reference_is_split_into_real_and_imaginary_parts():
    x, y = sp.symbols("x y", real=True)
    re_, im_ = _parts(sp.sin(x + sp.I * y))
    assert sp.simplify(re_ - sp.sin(x) * sp.cosh(y)) == 0
    assert sp.simplify(im_ - sp.cos(x) * sp.sinh(y)) == 0
    r = realify(csin, csin_ref, [(2,)], (-1, 1), "complex64")
    assert r.dtype == "float32" and r.shapes == [{"im": (2,), "re": (2,)}]
    out = np.asarray(r.fn({"re": jnp.array([0.5, 1.0]), "im": jnp.array([0.25, -1.0])})["im"])
    np.testing.assert_allclose(out, np.imag(np.sin(np.array([0.5 + 0.25j, 1.0 - 1.0j]))), rtol=1e-6)


def _at_values(fn):
    z = (np.linspace(-1, 1, 3) + 0.5j * np.linspace(1, -1, 3)).astype(np.complex64)
    params = {"n": 3, "w": np.float32([0.3, -0.2]), "z": z}
    args = (params, np.complex64(1.0 + 0.1j))

    def f(p, x):
        return fn(p["z"] * x) + jnp.sum(p["w"] ** 2) * p["n"]

    return f, args


@pytest.mark.parametrize("fn, ok", [(loss, True), (wrong_loss, False)], ids=["right", "wrong"])
def test_complex_leaves_in_args_are_checked_as_their_parts(fn, ok):
    f, args = _at_values(fn)
    r = gradcheck.check(f, None, args=args, max_examples=40, seed=0)
    assert r.ok == ok, r
    assert r.dtype == "float32"  # complex64 leaves: the parts in single precision
    for name in ("Re p['z']", "Im p['z']", "Re x", "Im x", "p['w']"):
        assert name in r.at_values
    if ok:
        return
    failure = r.failures[0]
    assert failure.category == "custom rule" and "sin_conj_rule" in failure.diagnosis
    # the failure file puts the complex leaves back whole
    p, x = gradcheck.load_args(failure.input_file, args)
    assert p["z"].dtype == np.complex64 and np.iscomplexobj(x) and p["n"] == 3
    z_re = failure.input[failure.input_names.index("Re p['z']")]
    np.testing.assert_array_equal(np.real(p["z"]), z_re)


def test_an_unknown_dtype_names_the_complex_ones():
    with pytest.raises(ValueError, match="complex64"):
        gradcheck.check(csin, csin_ref, shapes=[(3,)], dtype="int32")
