"""mlp.delta: the backpropagated error of a sigmoid network, derived and checked."""

from __future__ import annotations

import functools

import jax
import numpy as np
import sympy as sp

import gradcheck
from gradcheck import models as nw
from gradcheck.catalogue import Derivation, Step, evidence
from gradcheck.symbolic import array_symbols, concrete
from proofs import claim

from ._common import RANDOM_SIZES, _max_err, _random_mlp_batch, _rel_err, _same_matrix


# =====================================================================================
# mlp.delta
# =====================================================================================
def _sigma_prime_matrix(l: int, n: int):
    return sp.MatrixSymbol(rf"\Sigma'(z^{{{l}}})", n, n)


@claim(
    seeds=("000",),
    expected=("proved", "verified"),
    title=r"The backpropagated error of a sigmoid MLP is a product of $\Sigma'$ and transposed weights",
    statement=r"$\delta^{l} = \frac{\partial C}{\partial b^{l}} = \Sigma'(z^{l}) (W^{l+1})^{T} \Sigma'(z^{l+1}) "
    r"\cdots (W^{L})^{T} \Sigma'(z^{L}) \nabla_{a} C$, $\Sigma'(z) = \operatorname{diag}(\sigma'(z_{i}))$, "
    r"for a multi-neuron sigmoid network",
    params={"sizes": (2, 3, 2, 2)},
)
def delta(sizes=(2, 3, 2, 2)) -> Derivation:
    net = nw.nested_mlp(sizes)
    s = net.s
    L = s.L
    derived = {l: sp.Matrix([sp.diff(net.cost, bi) for bi in s.b[l - 1]]) for l in range(1, L + 1)}
    textbook = {l: nw.mlp_delta_textbook(net, l) for l in range(1, L + 1)}
    grad_a = sp.MatrixSymbol(r"\nabla_{a} C", sizes[-1], 1)
    delta = {l: sp.MatrixSymbol(rf"\delta^{{{l}}}", sizes[l], 1) for l in range(1, L + 1)}
    Wsym = {l: sp.MatrixSymbol(f"W^{{{l}}}", sizes[l], sizes[l - 1]) for l in range(1, L + 1)}
    chain = [_sigma_prime_matrix(1, sizes[1])]
    for l in range(2, L + 1):
        chain += [Wsym[l].T, _sigma_prime_matrix(l, sizes[l])]
    aL = array_symbols(f"a^{L}", (sizes[-1],))
    grad_cost = sp.Matrix([sp.diff(sum((aL - s.y).applyfunc(lambda e: e**2)) / 2, ai) for ai in aL])
    steps = [
        Step(grad_a, grad_cost, "sympy.diff of |a^L - y|^2 / 2 with respect to a^L"),
        Step(
            delta[L], sp.MatMul(_sigma_prime_matrix(L, sizes[L]), grad_a), f"layer {L}: a^{L} = sigma(z^{L}), entrywise"
        ),
    ]
    for l in range(L - 1, 0, -1):
        steps.append(
            Step(
                delta[l],
                sp.MatMul(_sigma_prime_matrix(l, sizes[l]), Wsym[l + 1].T, delta[l + 1]),
                f"layer {l}: z^{l + 1} = W^{l + 1} a^{l} + b^{l + 1}",
            )
        )
    steps.append(Step(delta[1], sp.MatMul(*chain, grad_a), "unrolled"))
    steps.append(Step(sp.Symbol(r"\delta^{L}_{0}"), derived[L][0], "sympy.diff of the nested network, first entry"))
    return Derivation(
        statement=sp.Eq(delta[1], sp.MatMul(*chain, grad_a)),
        steps=steps,
        objects={"net": net, "derived": derived, "textbook": textbook, "sizes": tuple(sizes)},
    )


@functools.lru_cache(maxsize=1)
def _delta_programs():
    def both(params, x, y):
        grads = jax.grad(nw.mlp_cost)(params, x, y)
        return [g[1] for g in grads], nw.mlp_deltas_closed(params, x, y)

    return jax.jit(jax.vmap(both))


@delta.verifier
def _(d: Derivation, s):
    derived, textbook = d["derived"], d["textbook"]
    sizes = d["sizes"]
    ok = all(_same_matrix(derived[l], textbook[l]) for l in derived)
    yield evidence.fact(
        ok,
        f"sympy.diff of the nested sigmoid network {sizes} with respect to b^l equals "
        f"Sigma'(z^l) (W^(l+1))^T ... Sigma'(z^L) (a^L - y) for every layer l",
        "sympy.diff of the nested network (generic sigma); entrywise difference expands to 0",
    )
    n = s.max_examples
    with gradcheck.float64():
        params, x, y = _random_mlp_batch(s.seed, RANDOM_SIZES, n)
        auto, closed = _delta_programs()(params, x, y)
        err = max(_max_err(a, c) for a, c in zip(auto, closed))
    # the derived formula itself, lambdified (concrete sigma), at the small size against JAX's grad
    sm_params, sm_x, sm_y = _random_mlp_batch(s.seed + 1, sizes, min(n, 32))
    net = d["net"]
    syms = [net.s.x, *[m for pair in zip(net.s.W, net.s.b) for m in pair], net.s.y]
    flat_syms = [e for m in syms for e in m]
    f = sp.lambdify(flat_syms, [concrete(e) for l in sorted(textbook) for e in textbook[l]], "numpy", cse=True)
    errs = []
    with gradcheck.float64():
        prog = _delta_programs()
        auto_small, _ = prog(sm_params, sm_x, sm_y)
        got = np.concatenate([np.asarray(a) for a in auto_small], axis=1)
    for i in range(len(sm_x)):
        args = list(sm_x[i])
        for W, b in sm_params:
            args += list(W[i].ravel()) + list(b[i])
        args += list(sm_y[i])
        errs.append(_rel_err(got[i], np.asarray(f(*args), dtype=np.float64)))
    err_small = max(errs)
    ok = err < 1e-10 and err_small < 1e-10
    yield evidence.fact(
        ok,
        f"jax.grad with respect to every b^l of {n} random sigmoid nets {RANDOM_SIZES} equals the "
        f"backward product (max relative error {err:.2g}), and the SymPy formula at {sizes} equals "
        f"jax.grad (max relative error {err_small:.2g}) (float64, jitted, vmapped)",
        "jax.grad vs closed form vs lambdified SymPy",
        verdict="verified",
        examples=n,
        seed=s.seed,
        dtype="float64",
        sizes=list(RANDOM_SIZES),
        max_relative_error=err,
        max_relative_error_symbolic=err_small,
    )
