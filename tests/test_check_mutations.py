"""Real functions, each broken by a generic mutation of its derivative rule: the rule is 0.1%
wrong on the upper 40% of the domain, as a jax.custom_jvp (forward) or jax.custom_vjp (reverse).
Every mutant must fail and every original must pass, in float64 and float32: the checker
generalises beyond the hand-written wrong rules of test_check_broken.py.

Domains are chosen so the mutated region has derivatives above float32's absolute floor
(TOLERANCES["float32"]["atol"] = 1e-5): below it no checker can tell 0.1% from rounding.
"""

import jax
import jax.numpy as jnp
import pytest
import sympy as sp

import gradcheck
from gradcheck.bench import mutate  # a rule 0.1% wrong where the last input exceeds a threshold


def sig(x):
    return 1 / (1 + sp.exp(-x))


CASES = {
    "cosh": (jnp.cosh, sp.cosh, [()], (-60.0, 60.0)),
    "expm1": (jnp.expm1, lambda x: sp.exp(x) - 1, [()], (-30.0, 30.0)),
    "erf": (jax.scipy.special.erf, sp.erf, [()], (-3.0, 1.5)),
    "silu": (jax.nn.silu, lambda x: x * sig(x), [()], (-50.0, 50.0)),
    "elu": (lambda x: jax.nn.elu(x), lambda x: sp.Piecewise((x, x > 0), (sp.exp(x) - 1, True)), [()], (-20.0, 20.0)),
    "logaddexp": (jnp.logaddexp, lambda x, y: sp.log(sp.exp(x) + sp.exp(y)), [(), ()], (-20.0, 20.0)),
    "softmax": (
        lambda a: jax.nn.softmax(a),
        lambda a: a.applyfunc(sp.exp) / sum(a.applyfunc(sp.exp)),
        [(3,)],
        (-5.0, 5.0),
    ),
    "det2": (jnp.linalg.det, lambda M: M.det(), [(2, 2)], (-10.0, 10.0)),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_original_passes(name, dtype):
    fn, ref, shapes, dom = CASES[name]
    report = gradcheck.check(fn, ref, shapes=shapes, domain=dom, dtype=dtype, max_examples=150)
    assert report.ok, str(report)


@pytest.mark.parametrize("mode", ["jvp", "vjp"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_rule_wrong_by_a_tenth_of_a_percent_on_part_of_the_domain_fails(name, dtype, mode):
    fn, ref, shapes, (lo, hi) = CASES[name]
    threshold = lo + 0.6 * (hi - lo)
    report = gradcheck.check(
        mutate(fn, threshold, mode), ref, shapes=shapes, domain=(lo, hi), dtype=dtype, max_examples=150
    )
    assert not report.ok, str(report)
    assert {f.kind for f in report.failures} <= {"gradient", "non-finite"}, str(report)
    last = [f for f in report.failures if f.input]
    assert all(float(jnp.ravel(f.input[-1])[-1]) > threshold for f in last), str(report)
