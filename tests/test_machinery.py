"""The engine's machinery on its own, beside the end-to-end suites (as Chex tests its internals):
the truths against each other on the same points, the acceptance rule at its edges, the status
coding, the table of modes, the shrinker's order, the tape against SymPy's own derivatives, each
path's truth in bulk (from the points alone, counting nothing), and the mpmath truth on its own."""

from __future__ import annotations

import dataclasses
import inspect
import platform

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import gradcheck
from gradcheck._check import _entries, _numeric, _probes
from gradcheck._check._engine import Engine
from gradcheck._check._judge import judge_entries
from gradcheck._check._modes import IN64, MODE_ORDER, MODES, kind_of, mode_of
from gradcheck._check._order import complexities, complexity, two_digits
from gradcheck._check._program import Program
from gradcheck.oracles import numerical
from gradcheck.oracles.mpmath_truth import MpTruth, Status, status_of
from gradcheck.oracles.reference import build_reference
from gradcheck.oracles.tape import Tape

x, y = sp.symbols("x y", real=True)
OUTPUTS = [sp.sin(x) * sp.exp(y), x**3 / (1 + y**2), sp.log(1 + x**2) * sp.tanh(y)]


def _points(n=6, seed=0):
    return np.random.default_rng(seed).uniform(-1.5, 1.5, size=(n, 2))


def _sympy_derivatives(X):
    """Jacobian (B, K, 2) and Hessians (B, K, 2, 2) from sympy.diff, lambdified in NumPy."""
    J = sp.lambdify((x, y), [[sp.diff(o, v) for v in (x, y)] for o in OUTPUTS], "numpy")
    H = sp.lambdify((x, y), [[[sp.diff(o, a, b) for b in (x, y)] for a in (x, y)] for o in OUTPUTS], "numpy")
    return (
        np.stack([np.asarray(J(*p), np.float64) for p in X]),
        np.stack([np.asarray(H(*p), np.float64) for p in X]),
    )


def test_the_tape_agrees_with_sympys_own_derivatives():
    X = _points()
    rng = np.random.default_rng(1)
    T, S, C = rng.normal(size=(1, 6, 2)), rng.normal(size=(1, 6, 2)), rng.normal(size=(1, 6, 3))
    tape = Tape([x, y], OUTPUTS)
    vals = tape.values(X)
    J, H = _sympy_derivatives(X)
    jvp, second = tape.jvp(vals, X, T, S)
    np.testing.assert_allclose(jvp[0], np.einsum("bkn,bn->bk", J, T[0]), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(second[0], np.einsum("bkmn,bm,bn->bk", H, T[0], S[0]), rtol=1e-12, atol=1e-14)
    gx, hx = tape.vjp(vals, X, C, T)
    np.testing.assert_allclose(gx[0], np.einsum("bkn,bk->bn", J, C[0]), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(hx[0], np.einsum("bkmn,bk,bn->bm", H, C[0], T[0]), rtol=1e-12, atol=1e-14)
    # and a wrong expectation is seen as wrong: the tape is not compared with itself
    assert not np.allclose(gx[0], np.einsum("bkn,bk->bn", J, C[0]) * (1 + 1e-6), rtol=1e-9, atol=0)


def test_the_three_truths_agree_on_the_same_points():
    """mpmath (the referee of a SymPy reference), the float64 NumPy program, and extrapolated
    differences of the reference's own float64 values (the ``reference=None`` truth's method)."""
    ref = build_reference(lambda v: sp.Matrix([o.subs({x: v[0], y: v[1]}) for o in OUTPUTS]), [(2,)], 1)
    X = _points(4, seed=2)
    V = np.random.default_rng(3).normal(size=X.shape)
    flat64, _ = ref.float64_program()(X)
    _, J64, _ = ref.split(flat64)
    values = sp.lambdify((x, y), OUTPUTS, "jax")  # its values only: the derivatives are differences
    est = numerical.directional_derivative(lambda p: jnp.stack(values(p[0], p[1])), X, V)
    assert est.converged.all()
    for b in range(X.shape[0]):
        flat_mp, status = ref.mp.truth(X[b], float(np.finfo(np.float64).max))
        assert (status == Status.USABLE).all()
        _, Jmp, _ = ref.split(flat_mp[None])
        np.testing.assert_allclose(J64[b], Jmp[0], rtol=1e-13, atol=1e-15)
        truth = Jmp[0] @ V[b]
        assert np.all(np.abs(est.value[b] - truth) <= est.error[b]), (est.value[b], truth, est.error[b])


def test_the_acceptance_rule_at_its_edges():
    exp = np.array([[1.0, -2.0, 0.0, 1e39, 3.0, np.nan]])
    status = np.array([[Status.USABLE, Status.USABLE, Status.USABLE, Status.BEYOND, Status.REFER, Status.UNDEFINED]])
    atol, rtol, eps = 1e-5, 1e-3, float(np.finfo(np.float32).eps)
    tol = atol + rtol * np.abs(np.nan_to_num(exp))
    big = float(np.finfo(np.float32).max)

    def verdict(got):
        bad, esc, *_ = judge_entries(np.asarray([got]), exp, status, exp, 0.0, False, atol, rtol, eps, big)
        return bad[0], esc[0]

    inside = exp + 0.999 * tol * np.array([1, -1, 1, 0, 0, 0])
    bad, esc = verdict(np.where(np.isfinite(inside), inside, 0.0) + np.array([0, 0, 0, np.inf, 0, 5.0]))
    assert not bad.any()  # within the tolerance; overflow of the right sign is right; UNDEFINED never judged
    assert esc.tolist() == [False, False, False, False, True, False]  # REFER goes to a better truth
    outside = exp[0, :3] + 1.001 * tol[0, :3] * np.array([1, -1, 1])
    bad, esc = verdict(np.concatenate([outside, [-np.inf, 0.0, 5.0]]))
    assert bad.tolist() == [True, True, True, True, False, False]  # beyond it; overflow of the wrong sign
    assert esc[:4].all()  # a disagreement is referred upwards before it is a failure


def test_status_of_a_float_tier():
    big = float(np.finfo(np.float32).max)
    got = status_of(np.array([1.0, np.inf, np.nan, 1e39, -1e39]), big)
    assert got.tolist() == [Status.USABLE, Status.REFER, Status.REFER, Status.BEYOND, Status.BEYOND]


@pytest.mark.parametrize("path", ["entries", "probes"])
def test_every_mode_a_program_builds_is_in_the_table(path):
    prog = Program(lambda a: a**2, [(2,)], np.zeros(2, int), 2, "float64", 2, path)
    assert set(prog.names) <= set(MODES)
    assert {mode_of(m).order for m in prog.names} == {0, 1, 2}
    assert MODE_ORDER[0] == "value" and MODE_ORDER.index("vjp") < MODE_ORDER.index("jvp")  # a VJP names its entry
    assert kind_of("hvp fwd-over-rev", 1.0, 1.0) == "second-derivative"
    assert kind_of("vjp" + IN64, 1.0, 2.0) == "gradient"
    assert kind_of("jvp", np.inf, 2.0) == "non-finite"
    with pytest.raises(KeyError):
        mode_of("hessian")
    # each mode is compared point by point as a directional mode of its order, which is its own
    for m in MODES.values():
        assert MODES[m.probe].order == m.order and MODES[m.probe].probe == m.probe
    assert MODES["jacrev"].probe == "vjp" and MODES["hessian fwd-over-fwd"].probe == "fwd-over-fwd"


def test_the_shrinkers_order_prefers_fewer_digits_zeros_and_positives():
    assert complexity([0.0, 0.0]) == 0.0
    assert complexity([1.0]) < complexity([1.5]) < complexity([1.2345678])
    assert complexity([2.0]) < complexity([-2.0])  # a sign costs
    assert complexity([0.0, 1.0]) < complexity([1.0, 1.0])  # a zero entry costs nothing


def test_the_shrinkers_order_of_many_points_is_each_points_own():
    """The order of a model's failing points, measured on threads, is each point's own, in order."""
    rng = np.random.default_rng(1)
    points = [rng.uniform(-1, 1, 40_000).astype(np.float32) for _ in range(5)] + [
        np.round(rng.uniform(-1, 1, 40_000), 2)
    ]
    assert complexities(points) == [complexity(x) for x in points]
    assert complexities([np.asarray([1.5, 0.0])]) == [complexity([1.5, 0.0])] and complexities([]) == []


def test_the_shrinkers_two_digit_point_is_pythons_formatting_exactly():
    """The shrinker's whole-vector candidate of two significant digits, vectorised for a
    model's parameters, gives the very doubles ``float(f"{v:.2g}")`` gives: ties (0.125, 9.95,
    99.5), powers of ten, zeros of both signs, subnormals, infinities, NaN, exponents beyond
    10^22, and random float32 and float64 entries."""
    rng = np.random.default_rng(0)
    special = [0.125, 0.0125, 1.5e-5, 2.5, 0.25, 9.95, 99.5, 0.995, -0.0, 0.0, np.inf, -np.inf, np.nan]
    special += [5e-324, 1.7976931348623157e308, 1e22, 1e23, 1e-22, 1e-23, 10.0, 100.0, 0.1, 9.999999999999999]
    x = np.concatenate(
        [
            np.asarray(special),
            rng.uniform(-1, 1, 20_000).astype(np.float32),
            rng.uniform(-1, 1, 20_000),
            rng.normal(size=20_000) * 10.0 ** rng.integers(-320, 308, 20_000),
            np.round(rng.uniform(-100, 100, 20_000), 3),  # many ties of the third digit
        ]
    )
    want = np.asarray([float(f"{v:.2g}") for v in x])
    for got in (two_digits(x), np.concatenate([two_digits(x[i : i + 50]) for i in range(0, x.size, 50)])):
        same = ((got == want) | (np.isnan(got) & np.isnan(want))) & (np.signbit(got) == np.signbit(want))
        assert same.all(), (x[~same][:5], got[~same][:5], want[~same][:5])


@pytest.mark.parametrize("before", [True, False])
def test_numpys_huge_page_advice_is_off_during_a_check_and_restored(before):
    """A check turns NumPy's MADV_HUGEPAGE advice off while it runs (the kernel's compaction on
    first touch stalled every large array) and gives the user's setting back, even on error."""
    import gradcheck

    core = np._core.multiarray
    seen = []

    def fn(x):
        seen.append(core._get_madvise_hugepage())
        return jnp.sin(x)

    old = core._set_madvise_hugepage(before)
    try:
        assert gradcheck.check(fn, None, shapes=[(2,)], max_examples=5, seed=0).ok
        assert seen and not any(seen) and core._get_madvise_hugepage() is before
        with pytest.raises(ValueError):
            gradcheck.check(fn, None, shapes=[(2,)], dtype="float16")
        assert core._get_madvise_hugepage() is before
        # two checks at once in two threads: the last to leave restores the setting
        import threading

        threads = [
            threading.Thread(target=gradcheck.check, args=(fn, None), kwargs=dict(shapes=[(k,)], max_examples=5))
            for k in (2, 3)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert core._get_madvise_hugepage() is before and not any(seen)
    finally:
        core._set_madvise_hugepage(old)


def _faults_of_a_fresh_array(mb: int) -> int:
    """Minor page faults of making, filling and dropping an array of ``mb`` MB twice (the
    second time is counted: memory the first gave back, or kept)."""
    import resource

    np.ones(mb << 17).sum()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    np.ones(mb << 17).sum()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's heap thresholds")
def test_a_check_keeps_glibcs_heap_for_large_arrays():
    """Inside a check an array of 64 MB (above glibc's largest mmap threshold, 32 MiB) is served
    from the heap the previous one left: about none of its 16,000 pages fault in anew (all of
    them do under glibc's defaults).  Nested holders keep the setting until the last leaves."""
    from gradcheck.oracles._memory import steady_memory

    with steady_memory():
        with steady_memory():
            inner = _faults_of_a_fresh_array(64)
        still = _faults_of_a_fresh_array(64)
    assert inner < 1000 and still < 1000, (inner, still)


def test_worst_and_dot_size_a_few_rows_at_a_time(monkeypatch):
    """The accuracy table's worst entry and the dot test's allowance, computed a block of rows
    at a time (a model's rows are 200 MB together), are the one-block results: the worst row
    is the first of the largest, counted from the whole array's first row."""
    from gradcheck._check._accuracy import worst
    from gradcheck._check._truth64 import dot_size
    from gradcheck.oracles import _batched

    rng = np.random.default_rng(5)
    truth = rng.uniform(0.5, 2.0, (9, 4))
    got = truth * (1 + 1e-5 * rng.normal(size=(9, 4)))
    got[7, 2] = truth[7, 2] * 1.01  # the largest error, in the last block
    got[8, 1] = truth[8, 1] * 1.001
    usable, x = np.ones((9, 4), bool), rng.uniform(-1, 1, (9, 3))
    a, t = rng.uniform(0, 1, (9, 4)), rng.normal(size=(9, 4))
    whole = worst(got, truth, usable, "float32", x), worst(got, truth, usable, "float32", x, False), dot_size(a, t)
    monkeypatch.setattr(_batched, "BLOCK_ENTRIES", 8)  # two rows a block
    assert len(_batched.row_blocks(9, 4)) == 5
    blocks = worst(got, truth, usable, "float32", x), worst(got, truth, usable, "float32", x, False), dot_size(a, t)
    assert blocks[0] == whole[0] and blocks[1] == whole[1] == [(2, 7, whole[1][0][2])]
    np.testing.assert_array_equal(blocks[2], whole[2])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_subnormal_rows_in_the_points_dtype_equal_the_float64_test(monkeypatch, dtype):
    """Which points hold a subnormal input (the accuracy measure leaves those points out), found
    once per check in the points' own dtype a block at a time, is the float64 test on every row;
    a point with a subnormal input measures nothing in :func:`worst`."""
    from gradcheck._check._ulps import subnormal_rows, worst
    from gradcheck.oracles import _batched

    rng = np.random.default_rng(3)
    tiny = np.finfo(dtype).tiny
    x = rng.uniform(-1, 1, (40, 7)).astype(dtype)
    x[rng.integers(0, 40, 12), rng.integers(0, 7, 12)] = 0.0  # zeros are not subnormal
    x[5, 3], x[17, 0], x[29, 6] = tiny / 2, -tiny / 4, np.nextafter(np.asarray(tiny, dtype), 0)
    x[33, 1], x[34, 2] = tiny, -tiny  # the smallest normals are not
    ax = np.abs(x.astype(np.float64))
    expected = np.any((ax > 0) & (ax < float(tiny)), axis=1)
    assert expected.sum() == 3
    np.testing.assert_array_equal(subnormal_rows(x, dtype), expected)
    monkeypatch.setattr(_batched, "BLOCK_ENTRIES", 15)  # two rows a block
    np.testing.assert_array_equal(subnormal_rows(x, dtype), expected)
    truth = np.ones((40, 1))
    got = truth.copy()
    got[5, 0] = got[6, 0] = 2.0  # row 5 has a subnormal input: row 6 is the worst measured
    assert worst(got, truth, np.ones((40, 1), bool), dtype, x, False)[0][1] == 6


@pytest.mark.parametrize("path", ["entries", "probes", "numerical"])
def test_each_paths_truth_in_bulk_reads_the_points_alone_and_counts_nothing(monkeypatch, path):
    """``Engine.estimate``: each path's truth over a batch comes from the points and directions
    alone (it is given no result of fn's) and leaves the check's tally as it found it (``judge``
    counts); a wrong rule is still caught through it, a right one still passes."""
    assert list(inspect.signature(Engine.estimate).parameters) == ["self", "X", "T", "C", "S"]
    calls = []

    def spied(cls):
        own = cls.estimate

        def spy(self, X, T, C, S):
            before = dataclasses.asdict(self.tally)
            out = own(self, X, T, C, S)
            calls.append(dataclasses.asdict(self.tally) == before)
            return out

        return spy

    for cls in (_entries.EntriesEngine, _probes.ProbesEngine, _numeric.NumericEngine):
        monkeypatch.setattr(cls, "estimate", spied(cls))

    @jax.custom_jvp
    def softplus(v):
        return jnp.logaddexp(v, 0.0)

    softplus.defjvp(lambda p, t: (softplus(p[0]), jax.nn.sigmoid(p[0]) * 1.01 * t[0]))
    ref = None if path == "numerical" else (lambda v: sp.log(1 + sp.exp(v)))
    kw = dict(shapes=[()], domain=(-3.0, 3.0), dtype="float64", max_examples=20)
    if path != "numerical":
        kw["path"] = path
    assert gradcheck.check(lambda v: jnp.logaddexp(v, 0.0), ref, **kw).ok
    wrong = gradcheck.check(softplus, ref, **kw)
    assert not wrong.ok and calls and all(calls), (path, calls)


def test_the_mpmath_truth_is_a_value_built_from_the_expressions_alone():
    """``MpTruth`` needs no reference around it: given the inputs, outputs and Jacobian it gives
    their values at a point, as SymPy evaluates them exactly there; built from a wrong Jacobian
    it gives those wrong values, so it reads what it is given."""
    jac = [[sp.diff(o, v) for v in (x, y)] for o in OUTPUTS]
    p = np.array([0.3, -1.2])
    at = {x: sp.Rational(float(p[0])), y: sp.Rational(float(p[1]))}  # the doubles themselves, exactly
    big = float(np.finfo(np.float64).max)
    truth = MpTruth([x, y], OUTPUTS, jac, None)
    vals, status = truth.truth(p, big)
    exact = np.array([float(e.subs(at).evalf(40)) for e in truth.exprs])
    assert vals.shape == (3 + 3 * 2,) and (status == Status.USABLE).all()
    np.testing.assert_allclose(vals, exact, rtol=1e-15, atol=0)
    wrong = MpTruth([x, y], OUTPUTS, [[2 * d for d in row] for row in jac], None)
    assert not np.allclose(wrong.truth(p, big)[0][3:], exact[3:], rtol=1e-6)
