"""``gradcheck.assert_check``: passes with the Report, fails with the readable one, at the user's line."""

from __future__ import annotations

import pickle

import jax
import jax.numpy as jnp
import pytest

import gradcheck
from gradcheck.models.references import sigmoid_ref

pytest_plugins = ["pytester"]

CHEAP = dict(shapes=[()], domain=(-30.0, 30.0), max_examples=20, seed=3)


def sigmoid(x):
    return 1 / (1 + jnp.exp(-x))


@jax.custom_jvp
def sigmoid_wrong_rule(x):
    return sigmoid(x)


# s (1 + s) instead of s (1 - s): the classic sign slip
sigmoid_wrong_rule.defjvp(lambda p, t: (sigmoid(p[0]), sigmoid(p[0]) * (1 + sigmoid(p[0])) * t[0]))


def test_assert_check_should_pass_and_return_the_report():
    report = gradcheck.assert_check(sigmoid, sigmoid_ref, **CHEAP)
    assert isinstance(report, gradcheck.Report) and report.ok
    assert report.seed == 3 and report.max_examples == 20


def test_assert_check_should_fail_with_the_readable_report_and_its_replay():
    with pytest.raises(gradcheck.CheckFailed) as info:
        gradcheck.assert_check(sigmoid_wrong_rule, sigmoid_ref, **CHEAP)
    err = info.value
    assert isinstance(err, AssertionError)  # pytest.raises(AssertionError) and plain except work
    assert isinstance(err.report, gradcheck.Report) and not err.report.ok
    assert str(err) == str(err.report)
    assert str(err).startswith("gradcheck.check of sigmoid_wrong_rule: FAILED")
    assert f"replay: {err.report.replay()}" in str(err)
    assert "seed=3" in err.report.replay()


def test_check_failed_survives_pickling_with_its_report():
    # pytest-xdist and multiprocessing send exceptions between processes
    with pytest.raises(gradcheck.CheckFailed) as info:
        gradcheck.assert_check(sigmoid_wrong_rule, sigmoid_ref, **CHEAP)
    back = pickle.loads(pickle.dumps(info.value))
    assert type(back) is gradcheck.CheckFailed and str(back) == str(info.value)
    assert back.report.replay() == info.value.report.replay()


def test_bad_argument_raises_as_in_check_not_as_a_failed_assertion():
    with pytest.raises(ValueError, match="max_examples must be a positive integer") as info:
        gradcheck.assert_check(sigmoid, sigmoid_ref, shapes=[()], max_examples=0)
    assert not isinstance(info.value, AssertionError)


def test_assert_check_shows_the_signature_of_check():
    import inspect

    assert inspect.signature(gradcheck.assert_check) == inspect.signature(gradcheck.check)


def test_pytest_shows_the_readable_report_at_the_users_line(pytester):
    pytester.makepyfile(
        test_user="""
        import jax, jax.numpy as jnp, sympy as sp, gradcheck

        @jax.custom_jvp
        def my_sigmoid(x):
            return 1 / (1 + jnp.exp(-x))
        my_sigmoid.defjvp(lambda p, t: (my_sigmoid(p[0]), my_sigmoid(p[0]) * (1 + my_sigmoid(p[0])) * t[0]))

        def test_my_sigmoid():
            gradcheck.assert_check(my_sigmoid, lambda x: 1 / (1 + sp.exp(-x)), shapes=[()],
                                   domain=(-30.0, 30.0), max_examples=20, seed=3)
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            ">*gradcheck.assert_check(my_sigmoid, *",  # the user's line is the one pointed at
            "E*gradcheck.CheckFailed: gradcheck.check of my_sigmoid: FAILED*",
            "E*replay: gradcheck.check(my_sigmoid, reference, shapes=*seed=3*",
            "test_user.py:9: CheckFailed",
        ]
    )
    # the readable report, not the dataclass repr, and no frame of gradcheck's own code
    assert "Report(failures=" not in out
    assert "_assert.py" not in out and "raise CheckFailed" not in out
