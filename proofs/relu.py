"""ReLU networks: Jacobians, dead units and the sparsity sentence of seed 001.

ReLU is the concrete ``Max(0, z)``; ``sympy.diff`` turns it into ``Heaviside(z)``.  At z = 0
SymPy's Heaviside is 1/2 and JAX's relu'(0) is 0: conventions at a kink (DESIGN.md).  The
symbolic statements hold off the kinks, where every pre-activation is strictly positive or
strictly negative; the random draws of the numerical checks hit a kink with probability 0.

Claims: relu.jacobian_product, relu.dead_unit, relu.sparsity.
"""

from __future__ import annotations

import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp
from hypothesis import strategies as st

import gradcheck
from gradcheck import models as nw
from gradcheck.catalogue import Derivation, Step, evidence
from gradcheck.symbolic import array_symbols
from proofs import claim


def _relu(e):
    return sp.Max(0, e)


def _same_matrix(a, b) -> bool:
    a, b = sp.Matrix(a), sp.Matrix(b)
    return a.shape == b.shape and all(sp.expand(x - y) == 0 for x, y in zip(a, b))


def relu_forward(params, x):
    """``(masks, out)``: the activity pattern of every layer (z > 0) and the output."""
    h, masks = x, []
    for W, b in params:
        z = W @ h + b
        masks.append(z > 0)
        h = jax.nn.relu(z)
    return masks, h


# =====================================================================================
# relu.jacobian_product
# =====================================================================================
@claim(
    seeds=("001",),
    expected=("proved", "verified"),
    title=r"A ReLU network's Jacobian is the product of its weights with inactive rows zeroed",
    statement=r"for $h^{l} = \operatorname{relu}(W^{l} h^{l-1} + b^{l})$, $\frac{\partial h^{L}}{\partial x} = D^{L} "
    r"W^{L} \cdots D^{1} W^{1}$ with $D^{l} = \operatorname{diag}(\mathbf{1}[z^{l} > 0])$: with all units "
    r"active it is $W^{L} \cdots W^{1}$; an inactive unit zeroes its row of its layer's factor",
    params={"sizes": (2, 2, 2)},
)
def jacobian_product(sizes=(2, 2, 2)) -> Derivation:
    s = nw.mlp_symbols(tuple(sizes))
    h, zs = s.x, []
    for W, b in zip(s.W, s.b):
        z = W * h + b
        zs.append(z)
        h = z.applyfunc(_relu)
    J = h.jacobian(s.x)  # entries: products of Heaviside(z^l_i) and weights
    units = [(l, i) for l in range(len(zs)) for i in range(zs[l].shape[0])]
    patterns = {}
    for bits in itertools.product((0, 1), repeat=len(units)):
        rep = {sp.Heaviside(zs[l][i]): bit for (l, i), bit in zip(units, bits)}
        masks = [[bit for (l2, _), bit in zip(units, bits) if l2 == l] for l in range(len(zs))]
        textbook = functools.reduce(lambda acc, lw: sp.diag(*lw[0]) * lw[1] * acc, zip(masks, s.W), sp.eye(sizes[0]))
        patterns[bits] = (J.xreplace(rep), textbook)
    all_active = functools.reduce(lambda acc, W: W * acc, s.W, sp.eye(sizes[0]))
    Ws = [sp.MatrixSymbol(f"W^{{{l}}}", sizes[l], sizes[l - 1]) for l in range(1, len(sizes))]
    Ds = [sp.MatrixSymbol(f"D^{{{l}}}", sizes[l], sizes[l]) for l in range(1, len(sizes))]
    lhs = sp.Symbol(r"\frac{\partial h^{L}}{\partial x}")
    return Derivation(
        statement=[
            sp.Eq(lhs, sp.MatMul(*[m for pair in zip(Ds[::-1], Ws[::-1]) for m in pair]), evaluate=False),
            sp.Eq(
                sp.Symbol(r"\frac{\partial h^{L}}{\partial x}\Big|_{\text{all active}}"),
                sp.MatMul(*Ws[::-1]),
                evaluate=False,
            ),
        ],
        steps=[
            Step(lhs, J, "Matrix.jacobian of the nested ReLU network (Max(0, z)' = Heaviside(z))"),
            Step(
                sp.Symbol("D^{l}"),
                sp.Symbol(r"\operatorname{diag}(\mathbb{1}[z^{l}_i > 0])"),
                "off the kinks Heaviside(z^l_i) is 1 (active) or 0 (inactive): row i of layer l is zeroed",
            ),
            Step(sp.Symbol(r"\text{all active}"), all_active, "every D^l = I: the product of the weights"),
        ],
        objects={"J": J, "patterns": patterns, "all_active": all_active, "sizes": tuple(sizes), "units": len(units)},
    )


@functools.lru_cache(maxsize=1)
def _jacobian_program():
    def one(params, x):
        J = jax.jacfwd(lambda v: relu_forward(params, v)[1])(x)
        masks, _ = relu_forward(params, x)
        prod = jnp.eye(x.shape[0], dtype=x.dtype)
        for m, (W, _) in zip(masks, params):
            prod = (m[:, None] * W) @ prod
        inactive = sum(jnp.sum(~m) for m in masks)
        return J, prod, inactive

    return jax.jit(jax.vmap(one))


@jacobian_product.verifier
def _(d: Derivation, s):
    pats = d["patterns"]
    ok = all(_same_matrix(j, t) for j, t in pats.values())
    ones = (1,) * d["units"]
    ok_all = _same_matrix(pats[ones][0], d["all_active"])
    yield evidence.fact(
        ok and ok_all,
        f"for every one of the {len(pats)} activity patterns of the {d['sizes']} ReLU network, "
        "Matrix.jacobian equals prod_l D^l W^l (inactive rows zeroed); all active, it is prod_l W^l",
        "Matrix.jacobian of the nested network, Heaviside replaced by the pattern",
    )
    n = s.max_examples
    sizes = (10, 30, 30, 30, 10)
    with gradcheck.float64():
        rng = np.random.default_rng(s.seed)
        nets = [nw.mlp_init(s.seed * 1009 + i, sizes, scale=lambda k: (2 / k) ** 0.5) for i in range(n)]
        params = [(np.stack([p[l][0] for p in nets]), np.stack([p[l][1] for p in nets])) for l in range(len(sizes) - 1)]
        x = rng.standard_normal((n, sizes[0]))
        J, prod, inactive = (np.asarray(v) for v in _jacobian_program()(params, x))
    err = float(np.max(np.abs(J - prod)) / max(np.max(np.abs(prod)), 1e-300))
    some = float(np.mean(inactive > 0))
    ok = err < 1e-12 and some > 0.5
    yield evidence.fact(
        ok,
        f"jax.jacfwd of {n} random ReLU nets {sizes} equals the product of the masked weights "
        f"(max error {err:.2g} relative to the largest entry); {some:.0%} of them have inactive units",
        "jax.jacfwd vs masked product, jitted and vmapped (float64)",
        verdict="verified",
        examples=n,
        seed=s.seed,
        dtype="float64",
        sizes=list(sizes),
        max_error=err,
        fraction_with_inactive_units=some,
        kinks="z = 0 has probability 0 under the random draws",
    )


# =====================================================================================
# relu.dead_unit
# =====================================================================================
@claim(
    seeds=("001",),
    expected=("proved", "verified"),
    title=r"A unit with negative pre-activation receives no gradient in its whole weight row",
    statement=r"in $h_{1} = W_{1} x + b_{1}$, $h_{2} = W_{2} \operatorname{relu}(h_{1}) + b_{2}$, $g = "
    r"\operatorname{loss}(h_{2}, y)$: if $h_{1,i} < 0$ then $\partial g/\partial W_{1}[i, :] = 0$ (and "
    r"moving that row changes nothing: the unit does not take part)",
    params={"n": 3, "m": 2, "i": 0},
)
def dead_unit(n: int = 3, m: int = 2, i: int = 0) -> Derivation:
    W1, b1, x = array_symbols("W_1", (n, n)), array_symbols("b_1", (n,)), array_symbols("x", (n,))
    W2, b2 = array_symbols("W_2", (m, n)), array_symbols("b_2", (m,))
    ell = sp.Function("ell")  # the loss of h2 (and of the label, a constant here): any differentiable loss
    h1 = W1 * x + b1
    h2 = W2 * h1.applyfunc(_relu) + b2
    g = ell(*h2)
    grad = sp.Matrix(n, n, lambda r, c: sp.diff(g, W1[r, c]))
    xi = [sp.Dummy(f"u{k}", real=True) for k in range(m)]
    grad_ell = sp.Matrix(
        [
            sp.Subs(sp.Derivative(ell(*xi), xi[k]), xi[k], h2[k]).subs({xi[j]: h2[j] for j in range(m) if j != k})
            for k in range(m)
        ]
    )
    textbook = sp.diag(*[sp.Heaviside(h) for h in h1]) * W2.T * grad_ell * x.T
    margin = sp.Symbol("n_i", positive=True)  # h1_i = -n_i < 0
    dead = {b1[i]: -(W1[i, :] * x)[0] - margin}
    grad_dead = grad.subs(dead)
    lhs = sp.Symbol(r"\frac{\partial g}{\partial W_1}")
    return Derivation(
        statement=sp.Implies(
            sp.Lt(sp.Symbol(f"h_{{1,{i}}}"), 0),
            sp.Eq(sp.Symbol(rf"\frac{{\partial g}}{{\partial W_1[{i}, :]}}"), sp.zeros(1, n), evaluate=False),
        ),
        steps=[
            Step(sp.Symbol("h_1"), h1, "h1 = W1 x + b1"),
            Step(lhs, textbook, "sympy.diff of ell(W2 relu(h1) + b2) with respect to every entry of W1"),
            Step(
                sp.Symbol(rf"\frac{{\partial g}}{{\partial W_1[{i}, :]}}\Big|_{{h_{{1,{i}}} = -n_i}}"),
                grad_dead[i, :],
                f"h1_{i} < 0: Heaviside(h1_{i}) = 0, the whole row vanishes",
            ),
        ],
        objects={
            "grad": grad,
            "textbook": textbook,
            "grad_dead": grad_dead,
            "i": i,
            "n": n,
            "m": m,
            "h1": h1,
            "margin": margin,
        },
    )


@functools.lru_cache(maxsize=1)
def _dead_program():
    def loss(W1, b1, W2, b2, x, label):
        logits = W2 @ jax.nn.relu(W1 @ x + b1) + b2
        return -jax.nn.log_softmax(logits)[label]

    def one(W1, b1, W2, b2, x, label, i):
        b1 = b1.at[i].set(-(W1[i] @ x) - 0.1 - jnp.abs(b1[i]))  # unit i dead: h1_i <= -0.1
        g = jax.grad(loss)(W1, b1, W2, b2, x, label)
        h1 = W1 @ x + b1
        p = jax.nn.softmax(W2 @ jax.nn.relu(h1) + b2)
        grad_ell = p - jax.nn.one_hot(label, p.shape[0], dtype=p.dtype)
        textbook = ((h1 > 0) * (W2.T @ grad_ell))[:, None] * x[None, :]
        tangent = jnp.zeros_like(W1).at[i].set(1.0)  # forward view: move the whole row i
        _, jvp = jax.jvp(lambda W: loss(W, b1, W2, b2, x, label), (W1,), (tangent,))
        return g, textbook, jvp, h1

    return jax.jit(jax.vmap(one))


@dead_unit.verifier
def _(d: Derivation, s):
    yield evidence.fact(
        _same_matrix(d["grad"], d["textbook"]),
        "dg/dW1 = diag(Heaviside(h1)) W2^T grad ell (h2) x^T (sympy.diff, any differentiable loss ell)",
        "sympy.diff of the nested network; entrywise difference expands to 0",
    )
    i = d["i"]
    row = d["grad_dead"][i, :]
    yield evidence.fact(
        all(e == 0 for e in row),
        f"if h1_{i} < 0 the row dg/dW1[{i}, :] is exactly 0",
        "sympy: substitute h1_i = -n_i, n_i > 0",
    )
    n = s.max_examples
    rng = np.random.default_rng(s.seed)
    nin, nout = 8, 4
    with gradcheck.float64():
        W1 = rng.standard_normal((n, nin, nin))
        b1 = rng.standard_normal((n, nin))
        W2 = rng.standard_normal((n, nout, nin))
        b2 = rng.standard_normal((n, nout))
        x = rng.standard_normal((n, nin))
        label = rng.integers(0, nout, n)
        unit = rng.integers(0, nin, n)
        g, tb, jvp, h1 = (np.asarray(v) for v in _dead_program()(W1, b1, W2, b2, x, label, unit))
    dead_rows = g[np.arange(n), unit]
    zero = bool(np.all(dead_rows == 0.0)) and bool(np.all(jvp == 0.0))
    err = float(np.max(np.abs(g - tb)) / np.max(np.abs(tb)))
    ok = zero and err < 1e-12
    yield evidence.fact(
        ok,
        f"for {n} random classifiers (8 inputs, 8 hidden ReLU, 4 classes, softmax cross-entropy) with "
        f"one unit forced to h1_i < 0: jax.grad's row dg/dW1[i, :] is exactly 0, moving that row "
        f"changes nothing (jvp = 0), and the other rows follow the formula (max error {err:.2g})",
        "jax.grad and jax.jvp, jitted and vmapped (float64)",
        verdict="verified",
        examples=n,
        seed=s.seed,
        dtype="float64",
        max_relative_error=err,
    )


# =====================================================================================
# relu.sparsity
# =====================================================================================
SPARSITY_WIDTH = 128
SPARSITY_DEPTH = 13  # layers 1..13: the note's 'N more layers' after the first, N = 1..12
SPARSITY_INPUTS = 256
SPARSITY_NETS = 32  # the figure's average: the per-layer unit rate is then 1/2 to within about 0.01


@functools.lru_cache(maxsize=1)
def _rates_program():
    """Per layer: the share of active units and the share of active input-output paths."""

    def run(Ws, x):  # Ws (depth, width, width), x (inputs, width); zero biases (symmetric init)
        def layer(h, W):
            z = h @ W.T
            active = z > 0
            return jax.nn.relu(z), jnp.mean(active, axis=1)

        _, frac = jax.lax.scan(layer, x, Ws)  # frac (depth, inputs): share of active units
        unit_rate = jnp.mean(frac, axis=1)
        # a path x_j -> u_1 -> ... -> u_N is active iff every unit on it is: per input the share
        # of active paths through N layers is the product of the shares of active units
        path_rate = jnp.mean(jnp.exp(jnp.cumsum(jnp.log(frac), axis=0)), axis=1)
        return unit_rate, path_rate

    return jax.jit(jax.vmap(run))  # over nets


def sparsity_rates(
    seed: int, nets: int = 1, width: int = SPARSITY_WIDTH, depth: int = SPARSITY_DEPTH, inputs: int = SPARSITY_INPUTS
):
    """Unit and path activation rates by layer, averaged over ``nets`` He-initialised ReLU nets.

    Zero biases and weights N(0, 2/width): every pre-activation is symmetric about 0, so each
    unit is active with probability exactly 1/2.  One net's share of active units in a layer
    still wanders by about 0.04 (its units see correlated inputs), so claims average nets.
    """
    rng = np.random.default_rng(seed)
    # float32 suffices for counting signs, and halves the cost of the draws
    Ws = rng.standard_normal((nets, depth, width, width), dtype=np.float32) * np.float32(math.sqrt(2 / width))
    x = rng.standard_normal((nets, inputs, width), dtype=np.float32)
    u, p = _rates_program()(Ws, x)
    return np.asarray(u, np.float64).mean(axis=0), np.asarray(p, np.float64).mean(axis=0)


@claim(
    seeds=("001",),
    expected=("refuted", "measured"),
    title=r"'ReLU activation rate drops by $2^{N}$ with $N$ layers': false for units, true for paths",
    statement=r"the note: 'after $N$ more layers the ReLU activation rate drops by a factor $2^{N}$'. For units it "
    r"is false (at symmetric initialisation about $1/2$ are active in every layer); for input-output paths "
    r"it is true (about $2^{-N}$ of them are active)",
)
def sparsity() -> Derivation:
    N = sp.Symbol("N", integer=True, positive=True)
    r = sp.Symbol("r_{N+1}")
    return Derivation(
        statement=[
            sp.Eq(sp.Symbol(r"r_{N+1} \text{ (note)}"), sp.Symbol("r_1") / 2**N),
            sp.Eq(sp.Symbol(r"P(z^{l}_i > 0)"), sp.Rational(1, 2)),
            sp.Eq(sp.Symbol(r"\text{share of active paths through } N \text{ layers}"), sp.Rational(1, 2) ** N),
        ],
        steps=[
            Step(r, sp.Symbol("r_1") / 2**N, "the note: after N more layers the activation rate drops by 2^N"),
            Step(
                sp.Symbol(r"P(z^{l}_i > 0)"),
                sp.Rational(1, 2),
                "z = w . h with w symmetric about 0 and independent of h != 0: half the units are active in EVERY layer",
            ),
            Step(
                sp.Symbol(r"\text{paths}"),
                sp.Rational(1, 2) ** N,
                "a path is active only if all N units on it are: the share of active paths halves per layer",
            ),
        ],
        objects={"N": N},
    )


@sparsity.verifier
def _(d: Derivation, s):
    def refutes(t):
        N, seed = t["N"], t["seed"]
        units, _ = sparsity_rates(seed)
        # the note: r_{1+N} = r_1 / 2^N; refuted when the rate is more than 1.5 times that
        return units[N] > 1.5 * units[0] / 2**N

    yield evidence.search_counterexample(
        refutes,
        st.fixed_dictionaries({"N": st.integers(1, SPARSITY_DEPTH - 1), "seed": st.integers(0, 2**16)}),
        "'after N more layers the ReLU activation rate drops by 2^N' is false for units: in the He-initialised net "
        f"of width {SPARSITY_WIDTH} drawn from seed, layer 1 + N keeps about half its units active, not 2^-N of "
        "layer 1's share",
        s,
        max_examples=min(s.max_examples, 50),
    )
    nets = SPARSITY_NETS
    units, paths = sparsity_rates(s.seed, nets=nets)
    depth = np.arange(1, SPARSITY_DEPTH + 1)
    slope = float(np.polyfit(depth, np.log2(paths), 1)[0])
    fig = {
        "width": SPARSITY_WIDTH,
        "nets": nets,
        "inputs": SPARSITY_INPUTS,
        "unit_rate_by_layer": [round(float(v), 4) for v in units],
        "path_rate_by_layer": [float(f"{v:.4g}") for v in paths],
        "log2_path_rate_per_layer": round(slope, 4),
    }
    ok = bool(np.all(np.abs(units - 0.5) < 0.05)) and abs(slope + 1) < 0.1
    yield evidence.measured(
        f"units: about half active in every layer ({min(units):.3f}..{max(units):.3f}); input-output paths: the active "
        f"share halves per layer (log2 slope {slope:.3f}, {paths[-1]:.3g} after {SPARSITY_DEPTH} layers vs 2^-{SPARSITY_DEPTH} = "
        f"{2.0**-SPARSITY_DEPTH:.3g}): the 2^N is true of paths, not of units",
        fig,
        ok,
        "JAX forward passes of He-initialised ReLU nets, zero biases, Gaussian inputs",
        seed=s.seed,
    )
