"""``reference=None``: no closed form; the truth is ``fn`` in float64 and extrapolated
differences with an error bound.  The same wrong rules as ``test_check_broken.py`` must be
caught (at least 90% of them, and every one wrong by a relative 1e-3 or more on a tenth of its
domain), and the same correct functions (the jax.nn ones at +-1000 included) must pass in both
dtypes: a disagreement fails only beyond the tolerance plus ten times the truth's error bound.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import pytest
from test_check_broken import BROKEN
from test_check_correct import CORRECT

import gradcheck

EXAMPLES = 100

#: Wrong by less than 1e-3 relative, only in float32's overflow (not a rule of the function), or
#: wrong in the value alone (without a reference nothing independent knows the value): not
#: required, but counted in the catch rate.
NOT_REQUIRED = {
    "sigmoid_off_by_1e_4",
    "sin_value_off",
    "naive_softmax_float32",
    "naive_logsumexp_float32",
    "naive_softmax_float64_above_709",
    "smooth_huber_inf_for_huge_x",
}


@functools.cache
def numerical_report(name):
    b = BROKEN[name]
    return gradcheck.check(
        b.fn, None, shapes=b.shapes, domain=b.domain, order=b.order, dtype=b.dtype, max_examples=EXAMPLES
    )


@pytest.mark.parametrize("name", sorted(set(BROKEN) - NOT_REQUIRED))
def test_wrong_rule_is_caught_without_a_reference(name):
    r = numerical_report(name)
    assert not r.ok, f"{name} was not caught with reference=None:\n{r}"
    assert "numerical" in r.truth and "the numerical truth" in str(r)


def test_at_least_90_percent_of_the_wrong_rules_are_caught():
    caught = [n for n in BROKEN if not numerical_report(n).ok]
    assert len(caught) >= 0.9 * len(BROKEN), sorted(set(BROKEN) - set(caught))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(CORRECT))
def test_correct_function_passes_without_a_reference(name, dtype):
    fn, _ref, shapes, domain = CORRECT[name]
    r = gradcheck.check(fn, None, shapes=shapes, domain=domain, dtype=dtype, max_examples=EXAMPLES)
    assert r.ok, str(r)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_correct_functions_pass_at_order_2_without_a_reference(dtype):
    for fn, shapes in (
        (jax.nn.softmax, [(5,)]),
        (jax.nn.log_softmax, [(5,)]),
        (jax.nn.sigmoid, [()]),
        (jnp.tanh, [(3,)]),
    ):
        r = gradcheck.check(fn, None, shapes=shapes, order=2, dtype=dtype, max_examples=60)
        assert r.ok, str(r)


def test_the_report_gives_the_numerical_truth_and_its_bound_and_what_was_not_judged():
    r = gradcheck.check(jnp.abs, None, shapes=[()], domain=(-1.0, 1.0), max_examples=60)
    assert r.ok, str(r)
    text = str(r)
    assert "Richardson-extrapolated" in text and "error bound median" in text
    # |x| at 0: the differences do not settle there; counted, with the reason
    assert "not judged:" in text and any("did not settle" in why for why in r.not_judged), text


def test_a_wrong_vjp_entry_of_a_large_input_is_named():
    @jax.custom_vjp
    def f(x):
        return jnp.sum(jnp.sin(x))

    f.defvjp(lambda x: (f(x), x), lambda x, g: (g * jnp.cos(x).at[37].multiply(1.01),))
    r = gradcheck.check(f, None, shapes=[(128,)], domain=(-3.0, 3.0), max_examples=20)
    assert not r.ok and any("x[37]" in fl.entry for fl in r.failures), str(r)
    # an input above 64 entries is printed as its dtype, shape and range, not as 128 numbers
    shown = r.failures[0].input_repr()
    assert shown.startswith("(<float64 (128,): ") and "..." not in shown and len(shown) < 120, shown


def test_the_term_sizes_are_exact_where_one_input_moves_and_agree_batched_and_point_by_point():
    """The tolerance's term sizes (fn's autodiff along random signs, unpacked in the program from
    NumPy-drawn words): with one input (the signs +-1) the root mean square of J r is |J| exactly,
    of c^T J is |c J|, of J (r * x) is |J x|; the vmapped and the point-by-point (lax.map)
    programs give the same numbers (to an ulp) from the same words; and fn's autodiff failing gives zeros."""
    import numpy as np

    from gradcheck._check._truth64 import sign_words, term_sizes

    a = jnp.asarray([3.0, -0.5])
    jvp1 = lambda x, t: jax.jvp(lambda y: a * jnp.sin(y[0]), (x,), (t,))[1]
    vjp1 = lambda x, c: jax.vjp(lambda y: a * jnp.sin(y[0]), x)[1](c)[0]
    X = np.asarray([[0.3], [-1.2], [2.0]])
    words = sign_words(0, 3, 1, 2)
    seq = lambda g: lambda *v: jax.lax.map(lambda t: g(*t), v)
    got = [term_sizes(jvp1, vjp1, 1, 2, each)(X, words, {"jv", "cz", "vj"}) for each in (jax.vmap, seq)]
    J = np.asarray(a)[None, :] * np.cos(X)  # (points, outputs): d/dx of a sin(x)
    np.testing.assert_allclose(got[0]["jv"], np.abs(J), rtol=1e-15)
    np.testing.assert_allclose(got[0]["cz"], np.abs(J * X), rtol=1e-15)
    # c^T J: c is a random sign per output, so |c J| is |J_0 +- J_1| per draw; rms over the draws
    assert np.all(got[0]["vj"][:, 0] >= np.abs(np.abs(J[:, 0]) - np.abs(J[:, 1])) - 1e-12)
    assert np.all(got[0]["vj"][:, 0] <= np.abs(J).sum(1) + 1e-12)
    for k in ("jv", "cz", "vj"):
        np.testing.assert_allclose(got[0][k], got[1][k], rtol=1e-14)  # vmap or lax.map: an ulp apart

    traced = []

    def broken(x, t):
        traced.append(1)
        raise TypeError("no forward mode")

    sizes = term_sizes(broken, vjp1, 1, 2, jax.vmap)
    for _ in range(2):  # the failing program is tried once, not traced again on every call
        np.testing.assert_array_equal(sizes(X, words, {"jv"})["jv"], np.zeros((3, 2)))
    assert len(traced) == 1


def test_a_large_leaf_gets_hypothesis_entries_on_a_hypothesis_background():
    """Above 1,024 entries a leaf is a drawn background with a few drawn entries (not sqrt(n) of
    them): every row inside the domain, the boundaries among the backgrounds, and rows where some
    entries differ from the background."""
    import numpy as np

    from gradcheck._check._sampling import hypothesis_points

    X = hypothesis_points([(40, 50), (3,)], [(-1.0, 1.0), (-1.0, 1.0)], "float32", 60, 0)
    assert X.shape == (60, 2003) and X.dtype == np.float32
    assert np.all((X >= -1) & (X <= 1))
    big = X[:, :2000]
    background = np.median(big, axis=1)
    assert {-1.0, 0.0, 1.0} & set(background.tolist())  # Hypothesis's boundaries, as the fill
    sprinkled = (big != background[:, None]).sum(1)
    assert sprinkled.max() >= 1 and sprinkled.max() <= 64


def test_a_float32_rule_wrong_below_float32s_tolerance_fails_in_float64_beside_it():
    """A rule wrong by a relative 1e-4 (float32's tolerance is 2e-4; its rounding is 1e-7): a
    float32 check judges fn's own float64 derivatives against the same truth at float64's
    tolerance too, and fails there, saying so; the same rule right passes."""
    from test_check_broken import sigmoid_off_by_1e_4

    r = gradcheck.check(sigmoid_off_by_1e_4, None, shapes=[(4,)], dtype="float32", max_examples=30)
    assert not r.ok, str(r)
    f = r.failures[0]
    assert f.category == "custom rule" and "in float64" in f.mode, str(r)
    assert "fn's own float64 derivative is wrong" in f.diagnosis and f.argument == 0, str(r)
    assert 5e-5 < f.error < 2e-4, str(r)  # below float32's tolerance: only float64 could say so
    right = gradcheck.check(jax.nn.sigmoid, None, shapes=[(4,)], dtype="float32", max_examples=30)
    assert right.ok, str(right)


def test_fn_computing_in_a_narrower_float_is_not_judged_at_float64s_tolerance():
    """The float64 tier reads fn's jaxpr: a cast to float32 inside (or a float32 callback) makes
    fn's float64 derivatives carry float32 rounding, so they are not judged at 1e-7."""
    from gradcheck._check._truth64 import narrows

    assert not narrows(lambda x: jnp.sin(x) * 2.0, 3, 3)
    assert narrows(lambda x: jnp.sin(x.astype(jnp.float32)).astype(x.dtype), 3, 3)

    @jax.custom_jvp
    def g(x):
        return jnp.sin(x)

    g.defjvp(lambda p, t: (g(p[0]), (jnp.cos(p[0]).astype(jnp.float32) * t[0]).astype(p[0].dtype)))
    assert narrows(g, 3, 3)  # inside the rule: the JVP's jaxpr is read, not only the value's


def test_a_dot_test_allows_the_root_sum_square_of_its_terms_where_smaller():
    """``sum_i e_i t_i`` with |e_i| <= a_i and t drawn independently (normal) stays within
    dot_size(a, t) in every one of 2,000 draws, though dot_size is ~9x below the worst case
    sum a_i |t_i| at 10,000 terms; at 16 terms it is that worst case."""
    import numpy as np

    from gradcheck._check._truth64 import dot_size

    rng = np.random.default_rng(0)
    n = 10_000
    a = rng.uniform(0.1, 2.0, size=n)
    e = a * rng.choice([-1.0, 1.0], size=n)  # the largest errors allowed, of one fixed pattern
    t = rng.normal(size=(2000, n))
    size = dot_size(a, t)[:, 0]
    assert np.all(np.abs(t @ e) <= size)
    assert np.median(np.sum(a * np.abs(t), axis=1) / size) > 8
    small = rng.normal(size=(3, 16))
    assert np.allclose(dot_size(np.ones(16), small)[:, 0], np.abs(small).sum(axis=1))


def test_a_wrong_rule_pays_the_rounding_allowance_for_one_row_per_mode(monkeypatch):
    """The Monte Carlo rounding allowance (seconds a row at model size) is measured on a failing
    mode's rows one at a time, until one still fails with it: a rule wrong everywhere is measured
    once in its forward mode, not at every failing row."""
    from gradcheck._check._numeric import NumericEngine

    measured: list[tuple[int, frozenset]] = []
    sweeps: list[list] = []
    noise, confirmed = NumericEngine._noise, NumericEngine._confirmed

    def spy_noise(self, X, T, C, S, got, modes, tier):
        measured.append((X.shape[0], frozenset(modes)))
        return noise(self, X, T, C, S, got, modes, tier)

    def spy_confirmed(self, *a, **kw):
        n = len(measured)
        out = confirmed(self, *a, **kw)
        sweeps.append((measured[n:], {f.row for f in out if f.mode == "jvp"}))
        return out

    monkeypatch.setattr(NumericEngine, "_noise", spy_noise)
    monkeypatch.setattr(NumericEngine, "_confirmed", spy_confirmed)

    @jax.custom_jvp
    def tanh(x):
        return jnp.tanh(x)

    tanh.defjvp(lambda p, t: (jnp.tanh(p[0]), (1 - jnp.tanh(p[0]) ** 2) * 1.01 * t[0]))
    report = gradcheck.check(lambda x: jnp.sum(tanh(x)), None, shapes=[(6,)], dtype="float32", max_examples=30, seed=0)
    assert not report.ok
    rows, failing = sweeps[0]  # the sweep's: every row fails in jvp
    assert len(failing) > 8
    assert sum(n for n, modes in rows if "jvp" in modes) == 1
    # the report counts those rows (and any failing in another mode) as failing, none as within fn's rounding
    n = report.rounding["float32"]
    assert n["disagreed"] >= len(failing) and n["measured"] == n["presumed"] == 0
    assert f"{n['disagreed']} fail" in str(report)


def test_the_report_counts_the_points_that_disagreed_only_within_fns_own_rounding():
    """sum(log_softmax(3 x)) of 1,024 entries: at a tie (every entry equal, a point the sampler
    always draws) the true JVP is ~1e-11 and float32 keeps the rounding of 1,024 terms of size 1,
    beyond atol.  Those points disagree before fn's rounding is allowed for; the report says how
    many, how many were measured within it (Monte Carlo arithmetic, at most 8 rows a mode) and how
    many more were taken as within it with them."""
    report = gradcheck.check(
        lambda x: jnp.sum(jax.nn.log_softmax(3 * x)), None, shapes=[(1024,)], dtype="float32", max_examples=20, seed=0
    )
    assert report.ok, str(report)
    n = report.rounding["float32"]
    assert n["disagreed"] > 8 and n["measured"] == 8 and n["presumed"] == n["disagreed"] - 8
    assert f"rounding (float32): {n['disagreed']} point(s) disagreed" in str(report)
    assert "fail" not in str(report).split("rounding (float32)")[1].split("\n")[0]
    assert report.record()["rounding"] == {"float32": n}
