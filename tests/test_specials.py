"""gradcheck.oracles.specials: special functions evaluated independently of jax.scipy.special.

Every supported function is lambdified with the JAX, NumPy and mpmath namespaces and compared
with mpmath called directly (written out per case below, so that a wrong argument order or
normalisation in the module shows); first and second derivatives of the JAX function (reverse,
and forward-over-reverse) are compared with ``mpmath.diff`` of that same direct truth.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
import sympy as sp

from gradcheck.oracles import specials

x, y = sp.symbols("x y", real=True)
mp = mpmath

# (id, SymPy expression in x and y, point (x, y), the same function written with mpmath)
CASES = [
    ("gamma", sp.gamma(x), (1.3, 0.0), lambda x, y: mp.gamma(x)),
    ("loggamma", sp.loggamma(x), (2.7, 0.0), lambda x, y: mp.loggamma(x)),
    ("digamma", sp.digamma(x), (1.6, 0.0), lambda x, y: mp.digamma(x)),
    ("polygamma", sp.polygamma(2, x), (1.6, 0.0), lambda x, y: mp.polygamma(2, x)),
    ("zeta", sp.zeta(x), (2.5, 0.0), lambda x, y: mp.zeta(x)),
    ("zeta2", sp.zeta(x, y), (2.5, 1.7), lambda x, y: mp.zeta(x, y)),
    ("erf", sp.erf(x), (0.6, 0.0), lambda x, y: mp.erf(x)),
    ("erfc", sp.erfc(x), (0.6, 0.0), lambda x, y: mp.erfc(x)),
    ("erfi", sp.erfi(x), (0.6, 0.0), lambda x, y: mp.erfi(x)),
    ("erfinv", sp.erfinv(x), (0.3, 0.0), lambda x, y: mp.erfinv(x)),
    ("erfcinv", sp.erfcinv(x), (0.4, 0.0), lambda x, y: mp.erfinv(1 - x)),
    ("besseli", sp.besseli(y, x), (1.9, 0.7), lambda x, y: mp.besseli(y, x)),
    ("besselj", sp.besselj(y, x), (1.9, 0.7), lambda x, y: mp.besselj(y, x)),
    ("besselk", sp.besselk(y, x), (1.9, 0.7), lambda x, y: mp.besselk(y, x)),
    ("bessely", sp.bessely(y, x), (1.9, 0.7), lambda x, y: mp.bessely(y, x)),
    ("besselj_int_order", sp.besselj(2, x), (1.9, 0.0), lambda x, y: mp.besselj(2, x)),
    ("Ei", sp.Ei(x), (0.8, 0.0), lambda x, y: mp.ei(x)),
    ("Ei_negative", sp.Ei(x), (-0.8, 0.0), lambda x, y: mp.ei(x)),
    ("E1", sp.E1(x), (0.8, 0.0), lambda x, y: mp.e1(x)),
    ("expint", sp.expint(y, x), (0.9, 1.6), lambda x, y: mp.expint(y, x)),
    ("expint_int", sp.expint(3, x), (0.9, 0.0), lambda x, y: mp.expint(3, x)),
    ("lowergamma", sp.lowergamma(y, x), (0.9, 1.4), lambda x, y: mp.gammainc(y, 0, x)),
    ("uppergamma", sp.uppergamma(y, x), (0.9, 1.4), lambda x, y: mp.gammainc(y, x, mp.inf)),
    ("beta", sp.beta(x, y), (1.3, 2.1), lambda x, y: mp.beta(x, y)),
    ("LambertW", sp.LambertW(x), (0.8, 0.0), lambda x, y: mp.lambertw(x).real),
    ("LambertW_branch", sp.LambertW(x, -1), (-0.2, 0.0), lambda x, y: mp.lambertw(x, -1).real),
    ("polylog", sp.polylog(y, x), (0.4, 2.3), lambda x, y: mp.polylog(y, x)),
    ("fresnels", sp.fresnels(x), (0.9, 0.0), lambda x, y: mp.fresnels(x)),
    ("fresnelc", sp.fresnelc(x), (0.9, 0.0), lambda x, y: mp.fresnelc(x)),
    ("li", sp.li(x), (2.5, 0.0), lambda x, y: mp.li(x)),
    ("Li", sp.Li(x), (2.5, 0.0), lambda x, y: mp.li(x) - mp.li(2)),
    ("Si", sp.Si(x), (1.1, 0.0), lambda x, y: mp.si(x)),
    ("Ci", sp.Ci(x), (1.1, 0.0), lambda x, y: mp.ci(x)),
    ("Shi", sp.Shi(x), (1.1, 0.0), lambda x, y: mp.shi(x)),
    ("Chi", sp.Chi(x), (1.1, 0.0), lambda x, y: mp.chi(x)),
    ("airyai", sp.airyai(x), (0.7, 0.0), lambda x, y: mp.airyai(x)),
    ("airybi", sp.airybi(x), (0.7, 0.0), lambda x, y: mp.airybi(x)),
    ("airyaiprime", sp.airyaiprime(x), (0.7, 0.0), lambda x, y: mp.airyai(x, derivative=1)),
    ("airybiprime", sp.airybiprime(x), (0.7, 0.0), lambda x, y: mp.airybi(x, derivative=1)),
    ("elliptic_k", sp.elliptic_k(x), (0.4, 0.0), lambda x, y: mp.ellipk(x)),
    ("elliptic_e", sp.elliptic_e(x), (0.4, 0.0), lambda x, y: mp.ellipe(x)),
    ("elliptic_e2", sp.elliptic_e(x, y), (0.8, 0.3), lambda x, y: mp.ellipe(x, y)),
    ("elliptic_f", sp.elliptic_f(x, y), (0.8, 0.3), lambda x, y: mp.ellipf(x, y)),
    ("elliptic_pi", sp.elliptic_pi(x, y), (0.3, 0.4), lambda x, y: mp.ellippi(x, y)),
    (
        "elliptic_pi3",
        sp.elliptic_pi(x, sp.Rational(9, 10), y),
        (0.3, 0.4),
        lambda x, y: mp.ellippi(x, mp.mpf(9) / 10, y),
    ),
    ("dirichlet_eta", sp.dirichlet_eta(x), (1.7, 0.0), lambda x, y: mp.altzeta(x)),
    # sp.diff leaves Derivative(zeta(s), s): prepare() turns it into a numerical partial
    ("zeta_ds", sp.diff(sp.zeta(x), x), (2.5, 0.0), lambda x, y: mp.zeta(x, 1, 1)),
    ("zeta_ds_chain", sp.diff(sp.zeta(x**2, y), x), (1.3, 1.7), lambda x, y: 2 * x * mp.zeta(x**2, y, 1)),
]


def _close(a, b, rtol, floor=1e-3):
    a, b = float(a), float(b)
    return abs(a - b) <= rtol * max(abs(b), floor)


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def _truth(fn, point, hessian=True):
    """Value, gradient (2,) and Hessian (2, 2) of fn at point, from mpmath at 30 digits."""
    with mp.workdps(30):
        p = tuple(mp.mpf(v) for v in point)
        val = fn(*p)
        grad = [mp.diff(fn, p, o) for o in [(1, 0), (0, 1)]]
        orders = [[(2, 0), (1, 1)], [(1, 1), (0, 2)]] if hessian else []
        hess = [[mp.diff(fn, p, o) for o in row] for row in orders]
        return float(val), np.array([float(g) for g in grad]), np.array([[float(h) for h in r] for r in hess])


def _lambdified(expr):
    e = specials.prepare(expr)
    return (
        sp.lambdify([x, y], e, modules=[specials.jax_namespace(), "jax"]),
        sp.lambdify([x, y], e, modules=[specials.numpy_namespace(), "numpy"]),
        sp.lambdify([x, y], e, modules=[specials.mpmath_namespace(), "mpmath"]),
    )


def test_every_supported_function_has_a_case():
    covered = set()
    for _, expr, _, _ in CASES:
        covered |= {type(f).__name__ for f in expr.atoms(sp.Function)}
    covered |= {"digamma", "E1"}  # SymPy evaluates these to polygamma(0, x) and expint(1, x)
    assert set(specials.SUPPORTED) <= covered, set(specials.SUPPORTED) - covered


@pytest.mark.parametrize("expr, point, truth", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_values_and_derivatives_agree_with_mpmath(x64, expr, point, truth):
    fj, fn, fm = _lambdified(expr)
    val, grad, hess = _truth(truth, point)
    X, Y = point

    # the three namespaces, values
    assert _close(fj(X, Y), val, 1e-12), (float(fj(X, Y)), val)
    got = np.asarray(fn(np.array([X, X]), np.array([Y, Y])), dtype=np.float64)
    assert np.broadcast_to(got, (2,)).shape == (2,)
    assert _close(np.broadcast_to(got, (2,))[0], val, 1e-12), (got, val)
    with mp.workdps(30):
        assert _close(mp.re(fm(mp.mpf(X), mp.mpf(Y))), val, 1e-15, floor=1e-20)

    # first derivatives in reverse mode, second forward-over-reverse; jitted, as the bridge runs
    # them (op-by-op each new primitive compiles on its own, several times slower)
    @jax.jit
    def derivatives(a, b):
        return jax.grad(fj, argnums=(0, 1))(a, b), jax.jacfwd(jax.jacrev(fj, argnums=(0, 1)), argnums=(0, 1))(a, b)

    g, H = derivatives(jnp.float64(X), jnp.float64(Y))
    for k in range(2):
        assert _close(g[k], grad[k], 1e-10), (k, g, grad)
    for j in range(2):
        for k in range(2):
            assert _close(H[j][k], hess[j, k], 1e-9), (j, k, H, hess)


@pytest.mark.parametrize("case", ["zeta2", "besselj", "uppergamma"])
def test_hessian_in_every_mode(x64, case):
    _, expr, point, truth = next(c for c in CASES if c[0] == case)
    fj, _, _ = _lambdified(expr)
    _, _, hess = _truth(truth, point)
    args = tuple(jnp.float64(v) for v in point)
    modes = {
        "rev-over-rev": jax.jacrev(jax.jacrev(fj, argnums=(0, 1)), argnums=(0, 1)),
        "fwd-over-fwd": jax.jacfwd(jax.jacfwd(fj, argnums=(0, 1)), argnums=(0, 1)),
        "jax.hessian": jax.hessian(fj, argnums=(0, 1)),
    }
    for mode, h in modes.items():
        H = jax.jit(h)(*args)
        for j in range(2):
            for k in range(2):
                assert _close(H[j][k], hess[j, k], 1e-9), (mode, j, k, H, hess)


def test_vmapped_and_jitted_batch(x64):
    expr = sp.besselk(y, x) * sp.polylog(y, x / 4) + sp.zeta(y + 1, x) + sp.lowergamma(y, x)
    fj, fn, _ = _lambdified(expr)
    truth = lambda x, y: mp.besselk(y, x) * mp.polylog(y, x / 4) + mp.zeta(y + 1, x) + mp.gammainc(y, 0, x)
    X = np.array([[1.3, 2.0], [2.5, 1.5], [3.0, 0.7], [0.6, 1.1]])

    def row(r):
        return jnp.stack([fj(r[0], r[1]), *jax.grad(fj, argnums=(0, 1))(r[0], r[1])])

    out = np.asarray(jax.jit(jax.vmap(row))(jnp.asarray(X)))
    assert out.shape == (4, 3)
    vals = np.asarray(fn(X[:, 0], X[:, 1]))
    for i, p in enumerate(X):
        val, grad, _ = _truth(truth, p, hessian=False)
        assert _close(out[i, 0], val, 1e-12) and _close(vals[i], val, 1e-12), (i, out[i], vals[i], val)
        assert _close(out[i, 1], grad[0], 1e-10) and _close(out[i, 2], grad[1], 1e-10), (i, out[i], grad)


def test_outside_the_real_domain_is_nan_as_the_truth(x64):
    # SymPy's li, Ci and loggamma are complex at negative arguments (the truth is then
    # undefined); SciPy's real conventions there must not leak through
    for expr in (sp.li(x), sp.Ci(x), sp.loggamma(x), sp.LambertW(x)):
        fj, fn, fm = _lambdified(expr)
        X = -0.5 if expr.func is not sp.LambertW else -1.0
        assert np.isnan(float(fj(X, 0.0))), expr
        assert np.isnan(float(np.asarray(fn(np.array([X]), np.array([0.0])))[0])), expr
        assert isinstance(mp.mpmathify(fm(mp.mpf(X), 0)), mp.mpc), expr


def test_jax_namespace_never_calls_jax_scipy_special(x64, monkeypatch):
    import jax.scipy.special as jss

    def refuse(*a, **k):
        raise AssertionError("jax.scipy.special called")

    for name in dir(jss):
        if not name.startswith("_") and callable(getattr(jss, name)):
            monkeypatch.setattr(jss, name, refuse)
    with pytest.raises(AssertionError):
        jss.gammaln(1.0)  # the guard is in place
    expr = sp.loggamma(x) + sp.digamma(y) + sp.erf(x * y) + sp.gamma(y) + sp.zeta(x + 1) + sp.erfinv(x / 4)
    fj = sp.lambdify([x, y], specials.prepare(expr), modules=[specials.jax_namespace(), "jax"])
    truth = lambda x, y: (
        mp.loggamma(x) + mp.digamma(y) + mp.erf(x * y) + mp.gamma(y) + mp.zeta(x + 1) + mp.erfinv(x / 4)
    )
    val, grad, hess = _truth(truth, (1.5, 0.8))
    assert _close(fj(1.5, 0.8), val, 1e-12)
    g = jax.grad(fj, argnums=(0, 1))(1.5, 0.8)  # op by op, as well as jitted
    H = jax.jit(jax.hessian(fj, argnums=(0, 1)))(1.5, 0.8)
    assert _close(g[0], grad[0], 1e-10) and _close(g[1], grad[1], 1e-10)
    assert _close(H[0][1], hess[0, 1], 1e-9) and _close(H[1][1], hess[1, 1], 1e-9)


@pytest.mark.parametrize(
    "bad, name",
    [
        (sp.Function("mystery")(x), "mystery"),
        (sp.mathieus(1, 2, x), "mathieus"),
        (sp.hyper([1, 2], [3], x), "hyper"),
        (sp.dirichlet_eta(x, y), "dirichlet_eta"),
    ],
)
def test_check_supported_names_what_it_refuses(bad, name):
    with pytest.raises(ValueError) as info:
        specials.check_supported([sp.exp(bad) + sp.gamma(x), sp.Matrix([sp.erf(y)])])
    msg = str(info.value)
    assert name in msg and "Supported special functions" in msg and "besselj" in msg
    # the parent exp() is not blamed for its unknown child
    assert "exp (" not in msg


def test_check_supported_accepts_every_supported_function():
    specials.check_supported([c[1] for c in CASES])
    specials.check_supported(
        sp.Abs(x)
        + sp.Max(x, y)
        + sp.Piecewise((x, x > 0), (y, True))
        + sp.Heaviside(x)
        + sp.sinc(x)
        + sp.exp(x) * sp.log(y)
        + sp.atan2(y, x)
        + sp.sqrt(x)
    )


def test_check_supported_refuses_a_derivative_nobody_can_evaluate():
    f = sp.Function("mystery")
    with pytest.raises(ValueError, match="unevaluated derivative"):
        specials.check_supported(sp.diff(f(x), x))
    specials.check_supported(sp.diff(sp.zeta(x, y), x, 2))  # a numerical partial: accepted


@pytest.mark.parametrize("expr, point, truth", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_sympy_derivatives_of_a_prepared_reference_evaluate(expr, point, truth):
    """The bridge differentiates with sp.diff: after prepare() every first and second derivative
    is printable and agrees with mpmath, in NumPy and mpmath (no Derivative, no Meijer G left)."""
    e = specials.prepare(expr)
    _, grad, hess = _truth(truth, point)
    derived = {
        (0,): sp.diff(e, x),
        (1,): sp.diff(e, y),
        (0, 0): sp.diff(e, x, x),
        (0, 1): sp.diff(e, x, y),
        (1, 1): sp.diff(e, y, y),
    }
    want = {(0,): grad[0], (1,): grad[1], (0, 0): hess[0, 0], (0, 1): hess[0, 1], (1, 1): hess[1, 1]}
    specials.check_supported(list(derived.values()))
    for key, d in derived.items():
        assert not d.has(sp.Derivative, sp.meijerg), (key, d)
        fn = sp.lambdify([x, y], d, modules=[specials.numpy_namespace(), "numpy"])
        fm = sp.lambdify([x, y], d, modules=[specials.mpmath_namespace(), "mpmath"])
        got = np.broadcast_to(np.asarray(fn(np.array([point[0]]), np.array([point[1]])), dtype=np.float64), (1,))[0]
        assert _close(got, want[key], 1e-10), (key, d, got, want[key])
        with mp.workdps(30):
            assert _close(mp.re(fm(mp.mpf(point[0]), mp.mpf(point[1]))), want[key], 1e-12), (key, d)


def test_a_numerical_partial_next_to_zero_stays_on_its_side():
    # d2 lowergamma / da dx = x^(a-1) e^-x log x; mpmath's central step (~1e-34) would cross 0
    # at x = 5e-35, where mpmath.gammainc(a, -h) recurses for minutes
    f = specials.numpy_namespace()["gc_d_lowergamma_1_1"]
    got = f(np.array([2.0, 2.0]), np.array([5e-35, 0.3]))
    truth = [float(mpmath.mpf(x) * mpmath.exp(-x) * mpmath.log(x)) for x in (5e-35, 0.3)]
    np.testing.assert_allclose(got, truth, rtol=1e-10)
    assert np.isfinite(f(np.array([2.0]), np.array([0.0]))).all()  # one-sided at 0
