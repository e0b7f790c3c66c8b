"""mlp.layer_jacobian and mlp.product_of_jacobians: one layer's Jacobian and their product through depth."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

import gradcheck
from gradcheck import models as nw
from gradcheck.catalogue import Derivation, Step, evidence
from gradcheck.symbolic import array_symbols, concrete, sigma
from proofs import claim

from ._common import RANDOM_SIZES, _max_err, _random_mlp_batch, _rel_err, _same_matrix


# =====================================================================================
# mlp.layer_jacobian
# =====================================================================================
def layer_textbook(W: sp.Matrix, b: sp.Matrix, h: sp.Matrix, activation=sigma) -> sp.Matrix:
    """diag(sigma'(W h + b)) W: the seed's form."""
    z = W * h + b
    return sp.diag(*[nw.dact(activation, zi) for zi in z]) * W


@claim(
    seeds=("001",),
    expected=("proved", "verified"),
    title=r"The Jacobian of a sigmoid layer is $\operatorname{diag}(\sigma'(z)) W$",
    statement=r"$\frac{\partial h^{t}}{\partial h^{t-1}} = \operatorname{diag}(\sigma'(W^{t} h^{t-1} + b^{t})) "
    r"W^{t}$ (an $m \times m$ diagonal times the $m \times n$ weights; the seed writes it without the "
    r"bias, and with a question mark)",
    params={"shape": (3, 2)},
)
def layer_jacobian(shape=(3, 2)) -> Derivation:
    m, n = shape
    W, b, h = array_symbols("W", (m, n)), array_symbols("b", (m,)), array_symbols("h", (n,))
    J = nw.layer_jacobian(W, b, h)
    tb = layer_textbook(W, b, h)
    Ws = sp.MatrixSymbol("W^{t}", m, n)
    lhs = sp.Symbol(r"\frac{\partial h^{t}}{\partial h^{t-1}}")
    return Derivation(
        statement=sp.Eq(
            lhs,
            sp.MatMul(sp.MatrixSymbol(r"\operatorname{diag}(\sigma'(W^{t} h^{t-1} + b^{t}))", m, m), Ws),
            evaluate=False,
        ),
        steps=[
            Step(sp.Symbol("h^{t}"), (W * h + b).applyfunc(sigma), "the layer, entrywise"),
            Step(lhs, J, "Matrix.jacobian with respect to h^{t-1}"),
            Step(lhs, tb, "row i is sigma'(z_i) times row i of W: diag(sigma'(z)) W"),
        ],
        objects={"W": W, "b": b, "h": h, "jacobian": J, "textbook": tb, "shape": (m, n)},
    )


def _layer(W, b, h):
    return jax.nn.sigmoid(W @ h + b)


def layer_jacobian_jax(W, b, h):
    """jax.jacrev of one sigmoid layer with respect to its input."""
    return jax.jacrev(_layer, argnums=2)(W, b, h)


def layer_jacobian_closed(W, b, h):
    """diag(sigma'(W h + b)) W, with the diagonal applied as a row scaling."""
    return nw.dsigmoid(W @ h + b)[:, None] * W


@layer_jacobian.verifier
def _(d: Derivation, s, fn=layer_jacobian_jax):
    yield evidence.fact(
        _same_matrix(d["jacobian"], d["textbook"]),
        f"Matrix.jacobian of sigma(W h + b) ({d['shape'][0]}x{d['shape'][1]} W) is diag(sigma'(W h + b)) W",
        "Matrix.jacobian (generic sigma); entrywise difference expands to 0",
    )
    W, b, h = d["W"], d["b"], d["h"]
    tb = d["textbook"]
    m, n = d["shape"]

    def reference(Wr, br, hr):
        rep = {W[i, j]: Wr[i, j] for i in range(m) for j in range(n)}
        rep.update({b[i]: br[i] for i in range(m)})
        rep.update({h[j]: hr[j] for j in range(n)})
        return concrete(tb.xreplace(rep))

    with gradcheck.float64():
        checked = evidence.checked(
            fn,
            reference,
            "jax.jacrev of a sigmoid layer agrees with diag(sigma'(W h + b)) W "
            "(values and derivatives, gradcheck.check, float64)",
            s,
            shapes=[(m, n), (m,), (n,)],
            domain=(-6.0, 6.0),
            order=1,
            dtype="float64",
        )
    yield checked


# =====================================================================================
# mlp.product_of_jacobians
# =====================================================================================
def _cayley(t):
    """A 2x2 rotation with rational entries in t (so identities are decided by ``cancel``)."""
    return sp.Matrix([[1 - t**2, -2 * t], [2 * t, 1 - t**2]]) / (1 + t**2)


@claim(
    seeds=("001", "002"),
    expected=("proved", "verified"),
    title=r"Gradients through depth are products of layer Jacobians and scale as $c^{\mathrm{depth}}$",
    statement=r"$\frac{\partial g}{\partial W^{t}} = \frac{\partial g}{\partial h^{L}} \left(\prod_{i} "
    r"\frac{\partial h^{i+1}}{\partial h^{i}}\right) \frac{\partial h^{t}}{\partial W^{t}}$; if every "
    r"factor is $c$ times an orthogonal matrix the product has norm exactly $c^{\mathrm{depth}}$ (explodes "
    r"for $c > 1$, vanishes for $c < 1$); a norm of $c$ per factor alone bounds the product by "
    r"$c^{\mathrm{depth}}$ from above only",
    params={"sizes": (2, 2, 2, 2), "t": 1},
)
def product_of_jacobians(sizes=(2, 2, 2, 2), t: int = 1) -> Derivation:
    sizes = tuple(sizes)
    L = len(sizes) - 1
    s = nw.mlp_symbols(sizes)
    # the network from h^t on, with h^t a vector of free symbols
    h_t = array_symbols("h^t", (sizes[t],))
    hs, zs = [h_t], []
    for l in range(t + 1, L + 1):
        z = s.W[l - 1] * hs[-1] + s.b[l - 1]
        zs.append(z)
        hs.append(z.applyfunc(sigma))
    composed = hs[-1].jacobian(h_t)  # d h^L / d h^t in one Matrix.jacobian of the composition
    layers = [nw.layer_jacobian(s.W[l - 1], s.b[l - 1], hs[l - t - 1]) for l in range(t + 1, L + 1)]
    product = functools.reduce(lambda acc, J: J * acc, layers, sp.eye(sizes[t]))
    # dg/dW^t for the quadratic cost: the seed's dg/dh^L (prod of Jacobians) dh^t/dW^t
    net = nw.nested_mlp(sizes)
    Wt = s.W[t - 1]
    direct = sp.Matrix(Wt.shape[0], Wt.shape[1], lambda i, j: sp.diff(net.cost, Wt[i, j]))
    up = {h_t[i]: net.a[t][i] for i in range(sizes[t])}
    grad_hL = (net.a[L] - s.y).T  # dg/dh^L, a row
    chain_row = grad_hL * product.xreplace(up)  # dg/dh^t
    dh_dW = [
        [sp.diff(net.a[t][k], Wt[i, j]) for k in range(sizes[t])]
        for i in range(Wt.shape[0])
        for j in range(Wt.shape[1])
    ]
    via_chain = sp.Matrix(
        Wt.shape[0],
        Wt.shape[1],
        lambda i, j: sum(chain_row[k] * dh_dW[i * Wt.shape[1] + j][k] for k in range(sizes[t])),
    )
    # scaling: c times orthogonal factors
    c = sp.Symbol("c", positive=True)
    ts = sp.symbols(f"t_1:{L + 1}", real=True)
    P = functools.reduce(lambda acc, tt: (c * _cayley(tt)) * acc, ts, sp.eye(2))
    lhs = sp.Symbol(r"\frac{\partial h^{L}}{\partial h^{t}}")
    return Derivation(
        statement=[
            sp.Eq(
                lhs,
                sp.MatMul(*[sp.MatrixSymbol(rf"J^{{{l}}}", sizes[l], sizes[l - 1]) for l in range(L, t, -1)]),
                evaluate=False,
            ),
            sp.Eq(sp.Symbol(r"\left\|\prod_{i} c\,Q_i\right\|"), c ** sp.Symbol("d")),
        ],
        steps=[
            Step(lhs, composed, "Matrix.jacobian of the composition (generic sigma)"),
            *[
                Step(sp.Symbol(rf"J^{{{l}}}"), J, f"Matrix.jacobian of layer {l} alone")
                for l, J in zip(range(t + 1, L + 1), layers)
            ],
            Step(
                sp.Symbol(r"(c Q_d \cdots c Q_1)^T (c Q_d \cdots c Q_1)"),
                sp.simplify(P.T * P),
                f"d = {L} factors, Q_i orthogonal",
            ),
        ],
        objects={
            "composed": composed,
            "product": product,
            "direct": direct,
            "via_chain": via_chain,
            "P": P,
            "c": c,
            "depth": L,
            "sizes": sizes,
            "t": t,
        },
    )


@product_of_jacobians.verifier
def _(d: Derivation, s):
    yield evidence.fact(
        _same_matrix(d["composed"], d["product"]),
        f"Matrix.jacobian of the composed layers {d['t'] + 1}..{d['depth']} equals the product of the layer Jacobians",
        "Matrix.jacobian; entrywise difference expands to 0",
    )
    yield evidence.fact(
        _same_matrix(d["direct"], d["via_chain"]),
        f"dg/dW^{d['t']} from sympy.diff of the cost equals dg/dh^L (product of layer Jacobians) dh^t/dW^t",
        "sympy.diff of the nested network",
    )
    P, c, L = d["P"], d["c"], d["depth"]
    gram = (P.T * P).applyfunc(sp.cancel)
    yield evidence.fact(
        gram == c ** (2 * L) * sp.eye(2),
        f"if every factor is c times an orthogonal matrix, the product of {L} of them is c^{L} times "
        f"an orthogonal matrix: its norm is exactly c^{L} (explodes for c > 1, vanishes for c < 1)",
        "sympy: P^T P of rational rotations, cancelled",
    )
    N = sp.Matrix([[0, c], [0, 0]])
    yield evidence.fact(
        bool((N * N).is_zero_matrix) and set(N.singular_values()) == {c, 0},
        "'norm c' alone gives only the upper bound c^depth: [[0, c], [0, 0]] has norm c and square 0",
        "sympy: product and singular values",
    )
    # numerically: linear layers W_i = c Q_i; jax.grad of u . h^L with respect to h^0 has norm c^d |u|
    rng = np.random.default_rng(s.seed)
    depth, width = 30, 8
    Qs = np.stack([np.linalg.qr(rng.standard_normal((width, width)))[0] for _ in range(depth)])
    u = rng.standard_normal(width)
    x = rng.standard_normal(width)
    errs = {}
    with gradcheck.float64():

        @jax.jit
        def norms(c):
            # d linear layers h -> c Q_i h as a scan; row d of the Jacobian of (u . h^1, ..., u . h^D)
            # with respect to h^0 is grad (u . h^d) = (c Q_d ... c Q_1)^T u
            def g(h0):
                def layer(h, Q):
                    h = c * Q @ h
                    return h, u @ h

                return jax.lax.scan(layer, h0, Qs)[1]

            return jnp.linalg.norm(jax.jacrev(g)(jnp.asarray(x)), axis=1)

        for cval in (0.9, 1.1):
            got = np.asarray(norms(cval))
            want = cval ** np.arange(1, depth + 1) * np.linalg.norm(u)
            errs[cval] = _rel_err(got, want)
        # sigmoid nets: jax.grad w.r.t. W^t equals the product of jax.jacobian of each layer
        n = s.max_examples
        params, xs, ys = _random_mlp_batch(s.seed, RANDOM_SIZES, n)

        @jax.jit
        @jax.vmap
        def compare(params, x, y):
            auto = jax.grad(nw.mlp_cost)(params, x, y)[0][0]  # dg/dW^1
            zs, As = nw.mlp_forward(params, x)
            row = As[-1] - y  # dg/dh^L
            for l in range(len(params) - 1, 0, -1):
                row = row @ jax.jacobian(_layer, argnums=2)(params[l][0], params[l][1], As[l])
            dh1_dW1 = jax.jacobian(_layer, argnums=0)(params[0][0], params[0][1], x)  # (n1, n1, n0)
            return auto, jnp.einsum("k,kij->ij", row, dh1_dW1)

        auto, chained = compare(params, xs, ys)
        err_sig = _max_err(auto, chained)
    ok = max(errs.values()) < 1e-10 and err_sig < 1e-10
    yield evidence.fact(
        ok,
        f"depth-{depth} products of c Q_i: the norm of jax.grad is c^depth |u| for c = 0.9 and 1.1 (max "
        f"relative error {max(errs.values()):.2g}); for {n} random sigmoid nets {RANDOM_SIZES} jax.grad "
        f"with respect to W^1 equals dg/dh^L times the product of jax.jacobian of each layer (max error "
        f"{err_sig:.2g})",
        "jax.grad, jax.jacobian, jitted and vmapped (float64)",
        verdict="verified",
        examples=n,
        seed=s.seed,
        dtype="float64",
        depth=depth,
        max_relative_error_scaling=max(errs.values()),
        max_relative_error_product=err_sig,
    )
