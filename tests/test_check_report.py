"""What a ``gradcheck.Report`` tells its reader: what failed, where, by how much, how to replay.

Also the numerics policy the report records: tolerances from one table per dtype and
overridable per call, NaN never equal to NaN, float64 enabled only inside ``check``.
"""

from __future__ import annotations

import functools
import json
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import gradcheck


@jax.custom_jvp
def sin_wrong_above_3(x):
    return jnp.sin(x)


@sin_wrong_above_3.defjvp
def _sin_rule(primals, tangents):
    (x,), (t,) = primals, tangents
    return jnp.sin(x), jnp.where(x > 3, 1.5 * jnp.cos(x), jnp.cos(x)) * t


@jax.custom_jvp
def sigmoid_off_by_1e_4(x):
    return jax.nn.sigmoid(x)


@sigmoid_off_by_1e_4.defjvp
def _sigmoid_rule(primals, tangents):
    (x,), (t,) = primals, tangents
    s = jax.nn.sigmoid(x)
    return s, s * (1 - s) * (1 + 1e-4) * t


def sigmoid_ref(x):
    return 1 / (1 + sp.exp(-x))


def naive_softmax(x):
    e = jnp.exp(x)
    return e / jnp.sum(e)


def naive_logsumexp(x):
    return jnp.log(jnp.sum(jnp.exp(x)))


def softmax_ref(a):
    e = a.applyfunc(sp.exp)
    return e / sum(e)


def logsumexp_ref(a):
    return sp.log(sum(a.applyfunc(sp.exp)))


@functools.cache
def above_3_report(seed: int = 0, examples: int = 200):
    return gradcheck.check(
        sin_wrong_above_3, sp.sin, shapes=[()], domain=(-10.0, 10.0), max_examples=examples, seed=seed
    )


def simple(v: float) -> bool:
    """A number a person would type: few significant digits."""
    return len(f"{abs(float(v)):.15g}".replace(".", "").strip("0")) <= 3


# --------------------------------------------------------------------------------------------
# What failed, where, by how much, how to reproduce
# --------------------------------------------------------------------------------------------
def test_report_names_what_failed_where_by_how_much_and_the_seed():
    report = above_3_report(seed=5)
    text = str(report)
    (f,) = report.failures
    assert "FAILED" in text
    assert "gradient" in text
    assert "x" in f.argument_name and f.argument_name in text  # which argument
    assert repr(float(f.input[0])) in text  # where
    assert repr(f.expected) in text and repr(f.got) in text  # expected vs got
    assert re.search(r"error:\s+0\.5 relative", text)  # by how much: 1.5 cos / cos - 1
    assert "seed=5" in text and "gradcheck.check(" in text  # how to reproduce


def test_ok_report_says_ok_and_how_much_was_checked(examples):
    report = gradcheck.check(jax.nn.sigmoid, sigmoid_ref, shapes=[()], max_examples=examples)
    text = str(report)
    assert report.ok and "ok" in text.splitlines()[0] and "FAILED" not in text
    assert str(report.record()["examples"]) in text


def test_failure_on_part_of_the_domain_is_shrunk_to_a_simple_number_in_that_part():
    report = above_3_report()
    (f,) = report.failures
    x = float(f.input[0])
    assert f.shrunk
    assert 3 < x <= 10 and simple(x), str(report)


def test_failure_of_a_vector_function_is_shrunk_entry_by_entry():
    report = gradcheck.check(naive_logsumexp, logsumexp_ref, shapes=[(3,)], dtype="float32", max_examples=100)
    (f,) = [f for f in report.failures if f.kind == "non-finite" and f.argument is None]
    x = np.asarray(f.input[0])
    assert np.max(x) > 88  # exp overflows float32 above log(3.4e38) = 88.7
    assert all(simple(v) for v in x), str(report)


def test_same_seed_replays_the_same_failures():
    a = above_3_report(seed=11)
    b = gradcheck.check(sin_wrong_above_3, sp.sin, shapes=[()], domain=(-10.0, 10.0), max_examples=200, seed=11)
    key = lambda r: [(f.kind, f.mode, f.entry, f.input_repr(), f.got, f.expected, f.points) for f in r.failures]
    assert key(a) == key(b)
    ra, rb = a.record(), b.record()
    ra.pop("seconds"), rb.pop("seconds")
    assert ra == rb


def test_the_replay_line_of_a_report_reproduces_it_when_run():
    report = above_3_report(seed=3)
    line = report.record()["replay"]
    again = eval(line, {"gradcheck": gradcheck, "sin_wrong_above_3": sin_wrong_above_3, "reference": sp.sin})
    assert [f.input_repr() for f in again.failures] == [f.input_repr() for f in report.failures]


def test_record_holds_examples_dtype_tolerance_and_seed():
    report = gradcheck.check(naive_softmax, softmax_ref, shapes=[(3,)], dtype="float32", max_examples=64, seed=9)
    rec = report.record()
    assert rec["dtype"] == "float32"
    assert rec["seed"] == 9
    assert rec["examples"] >= 64
    assert rec["tolerance"] == {k: gradcheck.TOLERANCES["float32"][k] for k in ("rtol", "atol")}
    assert rec["ok"] is False and rec["failures"]
    assert {"kind", "input", "expected", "got", "error"} <= set(rec["failures"][0])
    json.dumps(rec, allow_nan=True)  # a record is plain data


def test_tolerance_table_has_one_entry_per_dtype_float32_looser():
    t = gradcheck.TOLERANCES
    assert set(t) >= {"float32", "float64"}
    assert t["float32"]["rtol"] > t["float64"]["rtol"] and t["float32"]["atol"] >= t["float64"]["atol"]


def test_relative_bug_of_1e_4_fails_by_default_and_passes_when_rtol_is_raised_per_call():
    strict = gradcheck.check(sigmoid_off_by_1e_4, sigmoid_ref, shapes=[()], max_examples=100)
    loose = gradcheck.check(sigmoid_off_by_1e_4, sigmoid_ref, shapes=[()], max_examples=100, rtol=1e-3)
    assert not strict.ok and loose.ok, str(loose)
    assert loose.record()["tolerance"]["rtol"] == 1e-3
    assert strict.record()["tolerance"]["rtol"] == gradcheck.TOLERANCES["float64"]["rtol"]


# --------------------------------------------------------------------------------------------
# NaN is never equal to NaN
# --------------------------------------------------------------------------------------------
def test_nan_from_fn_and_nan_from_the_float64_reference_are_not_agreement():
    """Naive softmax and its naive reference are both NaN at logits of 1000 in float64;
    the truth there is finite, so the NaN is a failure, not a match."""
    x = sp.Matrix(sp.symbols("a b c"))
    f64 = sp.lambdify(list(x), list(softmax_ref(x)), modules="numpy")
    with np.errstate(all="ignore"):
        assert np.isnan(f64(1000.0, 0.0, 0.0)[0])
    with gradcheck.float64():
        assert np.isnan(np.asarray(naive_softmax(jnp.array([1000.0, 0.0, 0.0])))[0])
    report = gradcheck.check(naive_softmax, softmax_ref, shapes=[(3,)], domain=(-1000.0, 1000.0), max_examples=100)
    nan_values = [f for f in report.failures if f.kind == "non-finite" and f.argument is None]
    assert nan_values, str(report)
    assert all(math.isnan(f.got) and math.isfinite(f.expected) for f in nan_values)


def test_fn_that_is_nan_everywhere_fails_everywhere():
    report = gradcheck.check(lambda x: x * jnp.nan, lambda x: x, shapes=[()], domain=(-1.0, 1.0), max_examples=20)
    assert {f.kind for f in report.failures} == {"non-finite"}, str(report)


# --------------------------------------------------------------------------------------------
# float64 only inside check
# --------------------------------------------------------------------------------------------
def test_float64_is_enabled_inside_check_only():
    seen = []

    def spy(x):
        seen.append(x.dtype)
        return jnp.sin(x)

    assert jnp.ones(1).dtype == jnp.float32
    gradcheck.check(spy, sp.sin, shapes=[()], domain=(-1.0, 1.0), max_examples=16)
    assert seen and all(d == jnp.float64 for d in seen)
    assert jnp.ones(1).dtype == jnp.float32
    seen.clear()
    gradcheck.check(spy, sp.sin, shapes=[()], domain=(-1.0, 1.0), dtype="float32", max_examples=16)
    assert seen and all(d == jnp.float32 for d in seen)
    assert jnp.ones(1).dtype == jnp.float32


def test_float64_is_switched_off_again_after_a_failing_check_and_after_an_error():
    above_3_report()
    assert jnp.ones(1).dtype == jnp.float32

    def not_traceable(x):
        return float(x)

    with pytest.raises(TypeError):
        gradcheck.check(not_traceable, sp.sin, shapes=[()], max_examples=10)
    assert jnp.ones(1).dtype == jnp.float32


def test_float64_context_manager_is_scoped():
    with gradcheck.float64():
        assert jnp.ones(1).dtype == jnp.float64
    assert jnp.ones(1).dtype == jnp.float32
    with pytest.raises(RuntimeError):
        with gradcheck.float64():
            raise RuntimeError("inside")
    assert jnp.ones(1).dtype == jnp.float32
