"""Accuracy in the verdict: what a check measured in ulps reaches the user.

A derivative that is exactly 0 where the truth is 2e-13 passes the tolerance (below ``atol``)
yet is wrong in every digit.  These cases are open JAX issues (``expm1``, ``elu``, ``tanh``,
``arcsinh``: the derivative is computed as ``1 - y**2`` or ``exp(x)`` after ``y`` rounded), each
checked against a natural SymPy reference: the printed report lists them as inaccurate, and
``strict=True`` or ``accuracy=`` make them failures.  Functions that are accurate print nothing,
and neither do results small by cancellation in the mathematics itself (a layer norm's Hessian
entry at a zero crossing, a JVP whose terms cancel along a random tangent).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest
import sympy as sp

import gradcheck
from gradcheck.models.references import layer_norm_distributed_ref


def _elu_ref(x):
    return sp.Piecewise((x, x > 0), (sp.exp(x) - 1, True))


# (fn, reference, domain, dtype, where the finding is, the truth's order of magnitude there)
INACCURATE = {
    "expm1": (jnp.expm1, lambda x: sp.exp(x) - 1, (-100.0, 100.0), "float64"),
    "elu": (jax.nn.elu, _elu_ref, (-60.0, 5.0), "float64"),
    "tanh": (jnp.tanh, sp.tanh, (-20.0, 20.0), "float32"),
    "arcsinh": (jnp.arcsinh, sp.asinh, (-1e30, 1e30), "float32"),
}


@pytest.mark.parametrize("name", sorted(INACCURATE))
def test_a_derivative_of_zero_where_the_truth_is_tiny_is_printed_and_fails_under_strict(name):
    fn, ref, domain, dtype = INACCURATE[name]
    report = gradcheck.check(fn, ref, domain=domain, dtype=dtype, max_examples=100)
    assert report.ok, report  # within atol: not a failure by default
    text = str(report)
    assert "inaccurate (" in text, text
    line = next(line for line in text.splitlines() if line.startswith("    - d out / d x:"))
    assert "got 0.0" in line or "got -0.0" in line, line
    assert "within the tolerance" in line
    found = [r for r in report.accuracy if r["quantity"] == "d out / d x"][0]
    assert found["max_ulps"] > 2**20 and found["got"] == 0.0 and found["truth"] != 0.0
    assert report.record()["inaccurate"] == ["d out / d x"]

    strict = gradcheck.check(fn, ref, domain=domain, dtype=dtype, max_examples=100, strict=True)
    assert not strict.ok
    failure = strict.failures[0]
    assert failure.category == "inaccurate" and failure.entry == "d out / d x"
    assert failure.got == 0.0 and failure.expected == found["truth"]
    assert "strict=True" in strict.replay()


ACCURATE = [
    (jax.nn.sigmoid, lambda x: 1 / (1 + sp.exp(-x)), (-10.0, 10.0), "float32", 1),
    (jax.nn.sigmoid, lambda x: 1 / (1 + sp.exp(-x)), (-10.0, 10.0), "float64", 1),
    (jnp.exp, sp.exp, (-1000.0, 1000.0), "float32", 2),
    (jnp.exp, sp.exp, (-1000.0, 1000.0), "float64", 2),
    (jax.nn.softplus, lambda x: sp.log(1 + sp.exp(x)), (-1000.0, 1000.0), "float32", 1),
    (jax.nn.softplus, lambda x: sp.log(1 + sp.exp(x)), (-1000.0, 1000.0), "float64", 1),
]


@pytest.mark.parametrize(("fn", "ref", "domain", "dtype", "order"), ACCURATE)
def test_accurate_functions_print_no_finding_and_pass_strict(fn, ref, domain, dtype, order):
    # exp's results below the smallest normal (flushed to zero by XLA) are range, not accuracy
    report = gradcheck.check(fn, ref, domain=domain, dtype=dtype, order=order, max_examples=100, strict=True)
    assert report.ok, report
    assert "inaccurate" not in str(report)
    assert report.accuracy and all(r["max_ulps"] < 2**20 or not r["measurable"] for r in report.accuracy)


def _layer_norm(x):
    m = jnp.mean(x)
    return (x - m) / jnp.sqrt(jnp.mean((x - m) ** 2) + 1e-5)


def _softmax_ref(x):
    e = [sp.exp(v) for v in x]
    return sp.Matrix([v / sum(e) for v in e])


@pytest.mark.parametrize(
    ("fn", "ref", "domain", "dtype"),
    [
        (_layer_norm, layer_norm_distributed_ref, (-3.0, 3.0), "float32"),
        (jax.nn.softmax, _softmax_ref, (-10.0, 10.0), "float64"),
    ],
)
def test_results_small_by_cancellation_in_the_mathematics_are_no_finding(fn, ref, domain, dtype):
    report = gradcheck.check(fn, ref, shapes=[(4,)], domain=domain, dtype=dtype, order=2, max_examples=100)
    assert report.ok, report
    # entries crossing zero are millions of ulps off at some point, and within their rounding
    assert any(r["max_ulps"] > 2**20 for r in report.accuracy)
    assert "inaccurate" not in str(report)


def test_the_threshold_is_the_users():
    fn, ref, domain, dtype = INACCURATE["tanh"]
    loose = gradcheck.check(fn, ref, domain=domain, dtype=dtype, max_examples=60, accuracy=2**30)
    assert loose.ok and "inaccurate" not in str(loose)
    tight = gradcheck.check(fn, ref, domain=domain, dtype=dtype, max_examples=60, accuracy=2**22)
    assert not tight.ok and {f.category for f in tight.failures} == {"inaccurate"}
    assert "accuracy=4.1943e+06" in tight.replay()


@pytest.mark.parametrize("bad", [0, -3, float("nan"), "2**20", True])
def test_a_bad_threshold_is_refused_naming_it(bad):
    with pytest.raises(ValueError, match="accuracy must be a threshold in ulps"):
        gradcheck.check(jnp.tanh, sp.tanh, accuracy=bad)


def _tanh_vector_ref(x):
    return sp.Matrix([sp.tanh(v) for v in x])


def test_the_probes_path_measures_each_mode_and_confirms_with_mpmath():
    kw = dict(shapes=[(24,)], domain=(-20.0, 20.0), dtype="float32", max_examples=60, path="probes")
    report = gradcheck.check(jnp.tanh, _tanh_vector_ref, **kw)
    assert report.ok and report.path == "probes"
    found = [r for r in report.accuracy if r["max_ulps"] > 2**20]
    assert {r["quantity"].split(":")[0] for r in found} >= {"jvp", "vjp"}
    assert all(r["measured_by"] == "the mpmath truth" for r in found)
    assert "inaccurate (" in str(report)
    assert not gradcheck.check(jnp.tanh, _tanh_vector_ref, strict=True, **kw).ok


def test_reference_none_measures_float32_against_fn_in_float64():
    kw = dict(shapes=[(5,)], domain=(-20.0, 20.0), max_examples=60)
    report = gradcheck.check(jnp.tanh, None, dtype="float32", **kw)
    assert report.ok and "inaccurate (" in str(report)
    assert {r["measured_by"] for r in report.accuracy} == {"fn in float64 (its values, JVP and VJP)"}
    assert not gradcheck.check(jnp.tanh, None, dtype="float32", strict=True, **kw).ok
    # a sum whose terms cancel along a random tangent: rounding, no finding
    summed = gradcheck.check(lambda x: jnp.sum(jnp.exp(x)), None, dtype="float32", strict=True, **kw)
    assert summed.ok, summed
    # float64 has no finer truth: nothing measured, and the table says why
    f64 = gradcheck.check(jnp.tanh, None, dtype="float64", **kw)
    assert f64.accuracy == [] and "no finer truth" in f64.accuracy_table()


def test_the_accuracy_line_of_an_entry_beyond_the_tolerance_does_not_call_it_within():
    from gradcheck._check._accuracy import lines

    at = {"input": [0.5], "order": 1, "max_ulps": 1e7, "measurable": True, "rounding_move": 0.0}
    inside = {**at, "quantity": "d out / d x", "got": 0.0, "truth": 2e-13}
    outside = {**at, "quantity": "d out / d y", "got": 0.25, "truth": 0.5}
    text = "\n".join(lines([inside, outside], 2**20, "float32", 1e-5, 2e-4))
    assert "d out / d x: " in text and "is within the tolerance" in text.split("d out / d y")[0]
    assert "is beyond the tolerance" in text.split("d out / d y")[1]
