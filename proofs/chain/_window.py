"""The one-neuron chain: chain.window, chain.unstable."""

import math

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import sympy as sp
from hypothesis import strategies as st

import gradcheck
from gradcheck import models as nw
from gradcheck.catalogue import Derivation, Step, evidence
from gradcheck.models import dC, dsigma
from gradcheck.symbolic import concrete, logistic, sigma
from proofs import claim

from ._gradients import _identity, _same, _same_log, z

# =====================================================================================
# chain.window
# =====================================================================================
_U = sp.Symbol("u", positive=True)  # |w|
_q = sp.Symbol("q", positive=True)  # right end of the z-interval


def claimed_width(u):
    """The note's width of the window, (2/u) ln(u (1 + sqrt(1 - 4/u))/2 - 1), for u = |w| >= 4."""
    return 2 / u * sp.log(u * (1 + sp.sqrt(1 - 4 / u)) / 2 - 1)


@claim(
    seeds=("000",),
    expected=("proved", "verified"),
    title=r"The window of inputs where a chain factor reaches $1$ is at most $0.4477$ wide",
    statement=r"$\{a : |w \sigma'(w a + b)| \geq 1\}$ is an interval of width $\frac{2}{|w|} \ln\left(\frac{|w| (1 + "
    r"\sqrt{1 - 4/|w|})}{2} - 1\right)$ for $|w| \geq 4$ and empty for $|w| < 4$; the width is largest, "
    r"about $0.4477$, at $|w| \approx 6.894$",
)
def window(width=None) -> Derivation:
    width = claimed_width(_U) if width is None else width
    sv = sp.Symbol("s", positive=True)
    dsig = concrete(sp.diff(sigma(z), z))
    # |w| sigma'(z) >= 1  <=>  s (1 - s) >= 1/u with s = sigma(z)  (sigma' = sigma (1 - sigma))
    roots = sorted(sp.solve(sp.Eq(_U * sv * (1 - sv), 1), sv), key=lambda r: float(r.subs(_U, 5)))
    s_lo, s_hi = roots
    logit = sp.solve(sp.Eq(logistic(z), sv), z)[0]  # z = log(s / (1 - s))
    z_hi = logit.subs(sv, s_hi)
    derived_width = 2 * z_hi / _U  # the z-interval is [-z_hi, z_hi]; a = (z - b)/w scales it by 1/|w|
    # parametrise by the right end q = z_hi > 0: u = 1/sigma'(q), width = 2 q sigma'(q)
    dq = dsig.subs(z, _q)
    w_of_q = 2 * _q * dq
    dW = sp.diff(w_of_q, _q)
    return Derivation(
        statement=[
            sp.Eq(sp.Function("W")(_U), width),
            sp.Eq(sp.Symbol(r"\max_{|w| \geq 4} W"), sp.Float(0.4477, 4)),
        ],
        steps=[
            Step(sp.Symbol(r"\sigma'(z)"), dsig, "sympy.diff; even in z, decreasing for z > 0"),
            Step(
                sp.Symbol(r"s_{\pm}"),
                sp.Matrix([[s_lo, s_hi]]),
                "solve |w| s (1 - s) = 1 for s = sigma(z): real iff |w| >= 4",
            ),
            Step(
                sp.Symbol(r"z_{\pm}"),
                sp.Matrix([[logit.subs(sv, s_lo), z_hi]]),
                "z = log(s/(1-s)), solved from sigma(z) = s",
            ),
            Step(sp.Function("W")(_U), derived_width, "(z_+ - z_-)/|w|, with z_- = -z_+"),
            Step(sp.Function("W")(_U), width, "the note's form"),
            Step(sp.Symbol(r"W(q)"), w_of_q, "with q = z_+: |w| = 1/sigma'(q)"),
            Step(sp.Symbol(r"W'(q)"), dW, "sympy.diff: 2 sigma'(q) (1 - q tanh(q/2)), zero once"),
        ],
        objects={
            "width": width,
            "derived_width": derived_width,
            "s_lo": s_lo,
            "s_hi": s_hi,
            "z_hi": z_hi,
            "dsig": dsig,
            "w_of_q": w_of_q,
            "dW": dW,
        },
    )


def _window_numeric():
    """JAX: the window's ends by bisection on |w sigma'(w a + b)| - 1 (jax.grad of the sigmoid)."""
    dsig = jax.grad(jax.nn.sigmoid)

    def g(a, w, b):
        return jnp.abs(w * dsig(w * a + b)) - 1.0

    def end(w, b, direction):
        center = -b / w  # z = 0: the factor is at its largest there
        lo, hi = center, center + direction * 60.0 / jnp.abs(w)  # |z| = 60: sigma' ~ 1e-26

        def body(_, lh):
            lo, hi = lh
            mid = 0.5 * (lo + hi)
            inside = g(mid, w, b) >= 0
            return jnp.where(inside, mid, lo), jnp.where(inside, hi, mid)

        lo, hi = jax.lax.fori_loop(0, 200, body, (lo, hi))
        return 0.5 * (lo + hi)

    @jax.jit
    @jax.vmap
    def width(w, b):
        return end(w, b, 1.0) - end(w, b, -1.0)

    @jax.jit
    @jax.vmap
    def peak(w, b):
        return g(-b / w, w, b)

    return width, peak


@window.verifier
def _(d: Derivation, s):
    sy, width, dsig = d.objects, d["width"], d["dsig"]
    yield _identity(dsig.subs(z, -z), dsig, "sigma'(-z) = sigma'(z)")
    yield _identity(
        sp.diff(dsig, z),
        -dsig * sp.tanh(z / 2),
        "sigma''(z) = -sigma'(z) tanh(z/2) < 0 for z > 0: {z : |w| sigma'(z) >= 1} is an interval "
        "[-z_+, z_+], empty when |w| sigma'(0) = |w|/4 < 1",
    )
    yield _identity(sy["s_lo"] + sy["s_hi"], 1, "s_- + s_+ = 1, so z_- = -z_+")
    yield evidence.fact(
        _same_log(sy["derived_width"], width),
        "the derived width (z_+ - z_-)/|w| equals (2/|w|) ln(|w|(1 + sqrt(1 - 4/|w|))/2 - 1)",
        "sympy: equal coefficients, and equal arguments of the logarithm (log is injective)",
    )
    # the maximum: W(q) = 2 q sigma'(q) along q = z_+ > 0
    # q = z_+ parametrises the window: at |w| = 1/sigma'(q) the right end of the z-interval is q
    # (with e^q = 1 + r, r > 0, SymPy can take the square root of (e^q - 1)^2)
    r = sp.Symbol("r", positive=True)
    at_q = sp.simplify(sp.exp(sy["z_hi"]).subs(_U, 1 / dsig.subs(z, _q)))
    ok_param = _same(sp.simplify(at_q.subs(sp.exp(_q), 1 + r)), 1 + r)
    yield _identity(d["dW"], 2 * dsig.subs(z, _q) * (1 - _q * sp.tanh(_q / 2)), "dW/dq = 2 sigma'(q)(1 - q tanh(q/2))")
    h = _q * sp.tanh(_q / 2)
    dh, dh_pos = sp.diff(h, _q), sp.tanh(_q / 2) + _q / (2 * sp.cosh(_q / 2) ** 2)  # 1 - tanh^2 = 1/cosh^2
    mono = _same(dh, dh_pos) and bool(dh_pos.is_positive) and sp.limit(h, _q, sp.oo) is sp.oo and h.subs(_q, 0) == 0
    yield evidence.fact(
        mono and ok_param,
        "q tanh(q/2) increases strictly from 0 to infinity on q > 0 and |w| = 1/sigma'(q) maps q >= 0 "
        "onto |w| >= 4: W has exactly one critical point, its maximum",
        "sympy: sign of the derivative, limits",
    )
    with mpmath.workdps(50):
        fh = sp.lambdify(_q, h - 1, "mpmath")
        q_star = mpmath.findroot(fh, 1.5)
        u_star = 1 / sp.lambdify(_q, dsig.subs(z, _q), "mpmath")(q_star)
        w_star = sp.lambdify(_U, width, "mpmath")(u_star)
    u_star, w_star = float(u_star), float(w_star)
    ok = abs(w_star - 0.4477) < 5e-5 and abs(u_star - 6.894) < 5e-4
    yield evidence.fact(
        ok,
        f"the width is largest, {w_star:.6f}, at |w| = {u_star:.6f} "
        f"(q* = {float(q_star):.6f} solves q tanh(q/2) = 1; mpmath, 50 digits)",
        "mpmath.findroot of the critical-point equation",
        w_max=w_star,
        w_argmax=u_star,
        opens_at_abs_w=float(1 / dsig.subs(z, 0)),
    )
    # numerically: bisection on the JAX function, every batch padded to one shape (one compile)
    width_fn, peak_fn = _window_numeric()
    f_width = sp.lambdify(_U, width, "numpy")
    rng = np.random.default_rng(s.seed)
    n = s.max_examples
    size = max(2048, n + 7)

    def widths(ws, bs):
        k = len(ws)
        ws, bs = np.resize(ws, size), np.resize(bs, size)  # pad by repetition to the one shape
        return np.asarray(width_fn(jnp.asarray(ws), jnp.asarray(bs)))[:k]

    with gradcheck.float64():
        ws = np.concatenate(
            [[4.000001, 4.5, 5.0, u_star, 10.0, 100.0, 1e3], 4 + rng.exponential(10.0, n)]
        ) * rng.choice([-1.0, 1.0], n + 7)
        bs = rng.normal(0, 5, n + 7)
        num = widths(ws, bs)
        want = f_width(np.abs(ws))
        err = float(np.max(np.abs(num - want)))
        grid = np.linspace(4.0, 20.0, size)
        coarse = widths(grid, np.zeros(size))
        i = int(np.argmax(coarse))
        fine = np.linspace(grid[max(i - 1, 0)], grid[min(i + 1, size - 1)], size)
        vals = widths(fine, np.zeros(size))
        num_wmax, num_umax = float(vals.max()), float(fine[int(np.argmax(vals))])
        small = rng.uniform(-4, 4, n)
        peaks = np.asarray(peak_fn(jnp.asarray(small), jnp.asarray(rng.normal(0, 5, n))))
        # the width against |w| for the report's figure (b = 0; 0 where the factor never reaches 1)
        curve_w = np.linspace(0.5, 40.0, size)
        opens = np.asarray(peak_fn(jnp.asarray(curve_w), jnp.zeros(size))) >= 0
        curve = np.where(opens, widths(curve_w, np.zeros(size)), 0.0)
    ok = err < 1e-9 and abs(num_wmax - w_star) < 1e-9 and abs(num_umax - u_star) < 1e-3 and bool(np.all(peaks < 0))
    yield evidence.fact(
        ok,
        f"bisection on |w sigma'(w a + b)| - 1 (jax.grad, float64) gives the formula's width for "
        f"{n + 7} (w, b) (max error {err:.2g}); the numerical maximum {num_wmax:.6f} at |w| = "
        f"{num_umax:.4f}; no window for |w| < 4",
        "bisection on the JAX function",
        verdict="verified",
        examples=n + 7,
        seed=s.seed,
        max_width_error=err,
        numeric_max=num_wmax,
        numeric_argmax=num_umax,
        dtype="float64",
        curves={"abs_w": curve_w, "width": curve},
    )

    def violates(t):
        w, a, b = t
        return abs(w * float(jax.nn.sigmoid(w * a + b) * (1 - jax.nn.sigmoid(w * a + b)))) >= 1

    with gradcheck.float64():
        yield evidence.attack(
            violates,
            st.tuples(st.floats(-4, 4, exclude_min=True, exclude_max=True), st.floats(-100, 100), st.floats(-100, 100)),
            "no a with |w sigma'(w a + b)| >= 1 when |w| < 4",
            s,
        )


# =====================================================================================
# chain.unstable
# =====================================================================================
UNSTABLE_DEPTH = 4
UNSTABLE_NETS = 10_000


@claim(
    seeds=("000",),
    expected=("measured",),
    title=r"With $N(0, 1)$ weights the layers learn at speeds orders of magnitude apart",
    statement=r"'all layers learn at the same speed only if the products balance': for random one-neuron chains with "
    r"$N(0, 1)$ weights and biases, $|\partial C/\partial b_{j}|$ differs between layers by orders of "
    r"magnitude, and balanced nets are rare",
)
def unstable(L: int = UNSTABLE_DEPTH) -> Derivation:
    g = nw.chain_backward(L)
    s = g.s
    ratio = sp.cancel(g.grad_b(1) / g.grad_b(L))
    return Derivation(
        statement=sp.Eq(dC(s.b[0]) / dC(s.b[L - 1]), sp.Mul(dsigma(s.z[0]), *g.link[1:]) / dsigma(s.z[L - 1])),
        steps=[
            Step(
                dC(s.b[0]) / dC(s.b[L - 1]),
                ratio,
                "sympy.cancel of the products of chain.grad_bj: the speeds of layers 1 and L differ by this factor",
            )
        ],
        objects={"L": L, "ratio": ratio, "gradient": g},
    )


def measure_unstable(L: int, n: int, seed: int) -> dict:
    """Spread of log10 |dC/db_j| over the layers of ``n`` random chains (w, b ~ N(0, 1))."""
    with gradcheck.float64():
        params = nw.random_chain(seed, L, n)
        lg, _ = jax.jit(jax.vmap(nw.chain_log_closed))(*params)
        lg10 = np.asarray(lg) / math.log(10)
    spread = lg10.max(axis=1) - lg10.min(axis=1)
    per_layer = lg10.mean(axis=0)
    slope = float(np.polyfit(np.arange(1, L + 1), per_layer, 1)[0])
    return {
        "depth": L,
        "nets": n,
        "median_spread_decades": round(float(np.median(spread)), 3),
        "p10_spread_decades": round(float(np.percentile(spread, 10)), 3),
        "p90_spread_decades": round(float(np.percentile(spread, 90)), 3),
        "balanced_fraction": float(np.mean(spread < 1.0)),  # all layers within a factor 10
        "decades_per_layer": round(slope, 3),  # mean log10|dC/db_j| gained per layer towards the output
        "mean_log10_grad_by_layer": [round(float(v), 3) for v in per_layer],
    }


@unstable.verifier
def _(d: Derivation, s):
    g = d["gradient"]
    L = d["L"]
    # supporting (the claim's verdict is the measurement): what the measured spread is made of
    yield evidence.fact(
        _same(d["ratio"], sp.Mul(*g.link[1:]) * dsigma(g.s.z[0]) / dsigma(g.s.z[L - 1])),
        "dC/db_1 / dC/db_L is the product of the factors of the layers in between",
        "sympy.cancel of the products of chain.grad_bj",
        verdict=None,
    )
    n = UNSTABLE_NETS if s.profile == "default" else 10 * UNSTABLE_NETS
    fig = measure_unstable(L, n, s.seed)
    ok = fig["median_spread_decades"] >= 2.0 and fig["balanced_fraction"] < 0.01
    yield evidence.measured(
        f"with N(0,1) weights and biases the per-layer gradients |dC/db_j| of a depth-{L} chain spread over "
        f"{fig['median_spread_decades']} decades (median of {n} nets); all layers within a factor 10 in "
        f"{fig['balanced_fraction']:.2%} of them; about {fig['decades_per_layer']:.2f} decade lost per layer "
        "towards the input",
        fig,
        ok,
        "log-space product (chain.grad_bj) over random nets, jitted and vmapped",
        seed=s.seed,
        nets=n,
    )
