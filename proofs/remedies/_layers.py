"""Remedies: remedies.residual and remedies.batchnorm."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gradcheck
from gradcheck.catalogue import Derivation, Step, evidence
from gradcheck.symbolic import array_symbols
from proofs import claim

from ._clipping import _positive_int, c


# --- remedies.residual -----------------------------------------------------------------------------
def _block_sym(W1, W2, b):
    """F(x) = W2 tanh(W1 x + b) as a function of a SymPy vector."""
    return lambda v: W2 * (W1 * v + b).applyfunc(sp.tanh)


@claim(
    seeds=("002",),
    expected=("proved", "measured"),
    title=r"Residual blocks add the identity to the Jacobian",
    statement=r"$\frac{\partial (x + F(x))}{\partial x} = I + \frac{\partial F}{\partial x}$; through $L$ blocks the "
    r"Jacobian is the product of the $I + J_{k}$ and does not vanish the way the plain product of the "
    r"$J_{k}$ does",
    params={"n": 2},
)
def residual(n=2) -> Derivation:
    n = _positive_int("n (width)", n)
    x = array_symbols("x", (n,))
    W1, W2, b = array_symbols("U", (n, n)), array_symbols("V", (n, n)), array_symbols("b", (n,))
    F = _block_sym(W1, W2, b)
    J_res = (x + F(x)).jacobian(x)
    J_F = F(x).jacobian(x)
    pre = W1 * x + b
    # generic F: undefined functions of all inputs
    fs = sp.Matrix([sp.Function(f"F_{i}")(*x) for i in range(n)])
    # two blocks: h1 = x + F(x), h2 = h1 + G(h1); the chain rule's product from sympy's jacobian
    W3, W4, b2 = array_symbols("P", (n, n)), array_symbols("Q", (n, n)), array_symbols("d", (n,))
    G = _block_sym(W3, W4, b2)
    h1 = x + F(x)
    J_two = (h1 + G(h1)).jacobian(x)
    h = array_symbols("h", (n,))
    J_G_at_h1 = G(h).jacobian(h).subs(dict(zip(h, h1)), simultaneous=True)
    return Derivation(
        statement=sp.Eq(sp.Symbol(r"\partial (x + F(x)) / \partial x"), sp.Symbol(r"I + \partial F / \partial x")),
        steps=[
            Step(sp.Symbol("F(x)"), F(x), f"a residual branch, n = {n}"),
            Step(sp.Symbol(r"\partial (x + F(x)) / \partial x"), J_res, "Matrix.jacobian"),
            Step(
                sp.Symbol(r"\partial F / \partial x"),
                W2 * sp.diag(*[1 - sp.tanh(p) ** 2 for p in pre]) * W1,
                "= V diag(tanh'(U x + b)) U",
            ),
            Step(
                sp.Symbol(r"\partial h_2 / \partial x"),
                sp.Symbol(r"(I + \partial G/\partial h_1)(I + \partial F/\partial x)"),
                "two blocks: the product of per-block factors I + J, never a bare product of J",
            ),
        ],
        objects={
            "x": x,
            "J_res": J_res,
            "J_F": J_F,
            "W1": W1,
            "W2": W2,
            "pre": pre,
            "fs": fs,
            "J_two": J_two,
            "J_G_at_h1": J_G_at_h1,
            "n": n,
        },
    )


def _net(W, b, h0, residual: bool):
    """L sigmoid layers h <- sigma(W h + b), or residual blocks h <- h + sigma(W h + b)."""

    def body(h, wb):
        w, bb = wb
        f = jax.nn.sigmoid(w @ h + bb)
        return (h + f if residual else f), None

    h, _ = jax.lax.scan(body, h0, (W, b))
    return h


@functools.partial(jax.jit, static_argnames=("residual",))
def _end_to_end_jacobians(W, b, h0, residual: bool):
    return jax.vmap(lambda W, b, h: jax.jacfwd(lambda h: _net(W, b, h, residual))(h))(W, b, h0)


def residual_contrast(depth: int = 30, width: int = 16, nets: int = 16, seed: int = 0) -> dict:
    """Singular values of dh_L/dh_0 (``jax.jacfwd`` of the whole net) for plain and residual nets.

    Same random weights for both: W ~ N(0, 1/width), b ~ N(0, 0.1^2).  Returns the median over
    the nets of log10 of the largest and the smallest singular value.
    """
    depth, width, nets = (_positive_int(k, v) for k, v in (("depth", depth), ("width", width), ("nets", nets)))
    # NumPy draws the weights: jax.random would compile a sampler per shape (seconds on CPU)
    rng = np.random.default_rng([seed, 7])
    W = rng.standard_normal((nets, depth, width, width)) / np.sqrt(width)
    b = 0.1 * rng.standard_normal((nets, depth, width))
    h0 = rng.standard_normal((nets, width))
    with gradcheck.float64():
        out = {}
        for name, res in (("plain", False), ("residual", True)):
            sv = np.linalg.svd(np.asarray(_end_to_end_jacobians(W, b, h0, residual=res)), compute_uv=False)
            out[name] = {
                "log10 largest singular value": float(np.median(np.log10(sv[:, 0]))),
                "log10 smallest singular value": float(np.median(np.log10(sv[:, -1]))),
            }
    return out


@residual.verifier
def _(d: Derivation, s: gradcheck.Settings):
    n, x = d["n"], d["x"]
    yield evidence.identity(d["J_res"], sp.eye(n) + d["J_F"], "d(x + F(x))/dx = I + dF/dx")
    yield evidence.identity(
        d["J_F"],
        d["W2"] * sp.diag(*[1 - sp.tanh(p) ** 2 for p in d["pre"]]) * d["W1"],
        "dF/dx = V diag(tanh'(U x + b)) U",
    )
    yield evidence.identity(
        (x + d["fs"]).jacobian(x), sp.eye(n) + d["fs"].jacobian(x), "d(x + F(x))/dx = I + dF/dx for a generic F"
    )
    yield evidence.identity(
        d["J_two"], (sp.eye(n) + d["J_G_at_h1"]) * (sp.eye(n) + d["J_F"]), "through two blocks: (I + dG/dh1)(I + dF/dx)"
    )
    depth, width, nets = 30, 16, 16
    f = residual_contrast(depth, width, nets, seed=s.seed)
    plain, res = f["plain"]["log10 largest singular value"], f["residual"]["log10 largest singular value"]
    res_min = f["residual"]["log10 smallest singular value"]
    ok = plain < -6 and res > -1 and res_min > -2
    yield evidence.measured(
        f"{depth} sigmoid layers, width {width}, {nets} random nets: the plain Jacobian's largest singular value is "
        f"10^{plain:.1f} (median), the residual one's 10^{res:.2f}, its smallest 10^{res_min:.2f}",
        {
            "log10 sigma_max plain": round(plain, 1),
            "log10 sigma_max residual": round(res, 2),
            "log10 sigma_min residual": round(res_min, 2),
        },
        ok,
        "jax.jacfwd of the whole network (float64), singular values by numpy",
        depth=depth,
        width=width,
        nets=nets,
        seed=s.seed,
        weights="N(0, 1/width), biases N(0, 0.01)",
        medians=f,
    )


# --- remedies.batchnorm --------------------------------------------------------------------------
def bn_sym(w, X):
    """Batch norm (no epsilon, no affine part) of the unit u = X w over a batch of rows of X."""
    m = X.shape[0]
    u = X * w
    mu = sum(u) / m
    var = sum((ui - mu) ** 2 for ui in u) / m
    return (u - sp.ones(m, 1) * mu) / sp.sqrt(var)


def batch_norm(w, X, eps=0.0):
    """Batch norm of X @ w over the batch (axis 0).

    ``eps = 0`` is the mathematical batch norm, exactly invariant to w -> c w.  Libraries add
    eps (1e-5) to the variance to avoid 0/0 on a constant batch; that breaks the invariance by
    a relative amount of about eps / (2 c^2 Var[u]).

    The deviations d = u - mean(u) are divided by max|d| before they are squared: batch norm
    does not change when d is scaled, and without it a batch of tiny values (1e-160) has a
    variance that underflows to 0, so the result would be 0/0 where the true value is finite.
    """
    u = X @ w
    d = u - jnp.mean(u, axis=0)
    s = jax.lax.stop_gradient(jnp.max(jnp.abs(d), axis=0))  # a scale: the result does not depend on it
    d = d / jnp.where(s > 0, s, 1.0)
    return d / jnp.sqrt(jnp.mean(d**2, axis=0) + eps)


#: For the numerical checks the batch is X = OFFSETS + A with |A_kj| < 1: its rows stay apart, so
#: u = X w has a spread of the order of ||w||.  Batch norm of a nearly constant batch is
#: ill-conditioned in any implementation (u - mean(u) cancels all digits), which is not what
#: this claim is about.
OFFSETS = np.array([[0.0, 0.0], [3.0, -1.0], [-1.0, 4.0]])


def bn_offset(w, A):
    return batch_norm(w, jnp.asarray(OFFSETS, A.dtype) + A)


def bn_offset_sym(w, A):
    return bn_sym(w, sp.Matrix(OFFSETS.astype(int)) + A)


def _hypot(x) -> float:
    """Euclidean (Frobenius) norm without overflow or underflow of the squares."""
    return math.hypot(*np.ravel(np.asarray(x, np.float64)))


@claim(
    seeds=("002",),
    expected=("proved", "verified"),
    title=r"Batch norm is scale invariant, so its gradient is orthogonal to $W$ and scales as $1/c$",
    statement=r"$\operatorname{BN}(c W x) = \operatorname{BN}(W x)$ for $c > 0$ (no $\epsilon$); hence $\nabla_{W} "
    r"\cdot W = 0$ and $\nabla_{W}$ at $c W$ is $\nabla_{W}$ at $W$ divided by $c$",
)
def batchnorm() -> Derivation:
    n, batch = OFFSETS.shape[1], OFFSETS.shape[0]
    w, X = array_symbols("w", (n,)), array_symbols("X", (batch, n))
    B = bn_sym(w, X)
    J = B.jacobian(w)
    scaled = w * c
    return Derivation(
        statement=[
            sp.Eq(sp.Symbol(r"\mathrm{BN}(X c w)"), sp.Symbol(r"\mathrm{BN}(X w)")),
            sp.Eq(sp.Symbol(r"\nabla_w \mathrm{BN}_k \cdot w"), 0),
            sp.Eq(sp.Symbol(r"\nabla_w \mathrm{BN}_k(c w)"), sp.Symbol(r"\nabla_w \mathrm{BN}_k(w) / c")),
        ],
        steps=[
            Step(
                sp.Symbol(r"\mathrm{BN}(X w)"),
                sp.Symbol(r"(u - \bar u) / \sqrt{\mathrm{Var}[u]},\ u = X w"),
                f"batch of {batch}, {n} inputs, no epsilon",
            ),
            Step(
                sp.Symbol(r"\mathrm{BN}(X c w)"),
                sp.Symbol(r"c (u - \bar u) / \sqrt{c^2 \mathrm{Var}[u]}"),
                "c > 0 cancels",
            ),
            Step(
                sp.Symbol(r"J\,w"),
                sp.Symbol(r"\frac{d}{dt} \mathrm{BN}(X (1 + t) w)|_{t=0} = 0"),
                "Euler: a function of degree 0 has a gradient orthogonal to its argument",
            ),
        ],
        objects={"w": w, "X": X, "B": B, "J": J, "scaled": scaled},
    )


@batchnorm.verifier
def _(d: Derivation, s: gradcheck.Settings):
    w, X, B, J = d["w"], d["X"], d["B"], d["J"]
    yield evidence.identity(bn_sym(d["scaled"], X), B, "BN(X c w) = BN(X w) for c > 0")
    # Both differences are brought to one fraction with ``cancel`` first (under a second): sqrt of
    # the variance stays an atom.  Handing the raw difference to prove_equal, whose first move
    # is ``expand``, takes 5 to 40 s here.
    yield evidence.identity(
        (J * w).applyfunc(lambda e: sp.cancel(sp.together(e))),
        sp.zeros(B.shape[0], 1),
        "the gradient of every BN output is orthogonal to w",
    )
    J_at_cw = J.subs({wi: c * wi for wi in w}, simultaneous=True)
    yield evidence.identity(
        (c * J_at_cw - J).applyfunc(sp.cancel),
        sp.zeros(*J.shape),
        "the gradient at c w is the gradient at w divided by c",
    )
    n, batch = w.shape[0], X.shape[0]
    # w in [1, 100]^n: by the identities above only w's direction matters, and J(w) = J(w/|w|)/|w|.
    # For tiny w some entries of J are exactly 0 but computed as differences of terms of size
    # 1/|w|, which neither float64 nor the 50-digit truth resolves (the Hypothesis attack
    # below covers tiny w with a tolerance relative to |J|).
    yield evidence.checked(
        bn_offset,
        bn_offset_sym,
        "batch norm and its Jacobian (JAX) agree with SymPy (float64, X = offsets + A, |A| < 1)",
        s,
        shapes=[(n,), (batch, n)],
        domain=[(1.0, 100.0), (-1.0, 1.0)],
        dtype="float64",
    )
    with gradcheck.float64():
        # |w_i| >= 1e-300 or 0: J ~ 1/|w| must stay representable (it overflows float64 below that)
        w_el = st.floats(-100, 100).filter(lambda v: v == 0 or abs(v) >= 1e-300)
        strat = st.tuples(
            hnp.arrays(np.float64, (n,), elements=w_el),
            hnp.arrays(np.float64, (batch, n), elements=st.floats(-1, 1)),
            st.floats(1e-3, 1e3),
        )
        yield evidence.attack(
            bn_violation(bn_offset),
            strat,
            "the Jacobian J of BN(X w) (jax.jacfwd) has J w = 0 and J(c w) = J(w) / c (float64)",
            s,
        )


def bn_violation(bn):
    """A predicate for Hypothesis on (w, A, c): the Jacobian J = d bn(w, A) / dw has J w != 0 or
    J(c w) != J(w) / c, relative to |J|.  Every downstream gradient is J^T (dL/dBN), so this is
    the orthogonality and 1/c scaling of any loss's gradient.  Call it with float64 enabled."""
    jac = jax.jit(jax.jacfwd(bn))

    def violates(args):
        w, A, cc = (jnp.asarray(a) for a in args)
        if not bool(jnp.any(w != 0)):
            return False  # w = 0: a constant batch, batch norm is 0/0
        J, Jc = np.asarray(jac(w, A)), np.asarray(jac(cc * w, A))
        # norms by math.hypot, which scales: J ~ 1/||w|| reaches 1e271 when w ~ 1e-271
        size = _hypot(J)
        ortho = _hypot(J @ np.asarray(w)) <= 1e-9 * size * _hypot(w)
        inverse = _hypot(float(cc) * Jc - J) <= 1e-8 * size
        return not (ortho and inverse)

    return violates
