"""The multi-neuron sigmoid network (seeds 000, 001): ``z^l = W^l a^{l-1} + b^l``,
``a^l = sigma(z^l)``, cost ``C = |a^L - y|^2 / 2``, in SymPy and in JAX.

    mlp_symbols(sizes), nested_mlp(sizes)        the symbols, the nested network (SymPy)
    layer_jacobian(W, b, h)                      d sigma(W h + b) / dh by Matrix.jacobian
    mlp_delta_textbook(net, l)                   Sigma'(z^l) (W^{l+1})^T ... Sigma'(z^L) (a^L - y)
    mlp_init(seed, sizes)                        parameters [(W^1, b^1), ...] as NumPy arrays
    mlp_forward(params, x)                       (zs, activations): one input or a batch of rows
    mlp_cost(params, x, y)                       C
    mlp_deltas_closed(params, x, y)              [delta^1, ..., delta^L] by the textbook product
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from ..symbolic import array_symbols, sigma
from .chain import dact
from .chain_numeric import dsigmoid

__all__ = [
    "MLPSymbols",
    "NestedMLP",
    "mlp_symbols",
    "nested_mlp",
    "layer_jacobian",
    "mlp_delta_textbook",
    "mlp_init",
    "mlp_forward",
    "mlp_cost",
    "mlp_deltas_closed",
]


@dataclasses.dataclass(frozen=True)
class MLPSymbols:
    sizes: tuple[int, ...]  # n_0 (inputs), n_1, ..., n_L
    x: sp.Matrix
    W: tuple[sp.Matrix, ...]  # W[l-1] is W^l, n_l x n_{l-1}
    b: tuple[sp.Matrix, ...]
    y: sp.Matrix
    z: tuple[sp.Matrix, ...]  # names z^l_i, the textbook's weighted inputs

    @property
    def L(self) -> int:
        return len(self.sizes) - 1


def _sizes(sizes) -> tuple[int, ...]:
    sizes = tuple(sizes)
    if len(sizes) < 2 or any(isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1 for n in sizes):
        raise ValueError(f"sizes must list at least two positive layer widths (inputs first), got {sizes!r}")
    return tuple(int(n) for n in sizes)


@functools.lru_cache(maxsize=32)
def mlp_symbols(sizes: tuple[int, ...]) -> MLPSymbols:
    sizes = _sizes(sizes)
    W = tuple(array_symbols(f"W^{l}", (sizes[l], sizes[l - 1])) for l in range(1, len(sizes)))
    b = tuple(array_symbols(f"b^{l}", (sizes[l],)) for l in range(1, len(sizes)))
    z = tuple(array_symbols(f"z^{l}", (sizes[l],)) for l in range(1, len(sizes)))
    return MLPSymbols(sizes, array_symbols("x", (sizes[0],)), W, b, array_symbols("y", (sizes[-1],)), z)


@dataclasses.dataclass(frozen=True)
class NestedMLP:
    s: MLPSymbols
    z: tuple[sp.Matrix, ...]  # nested weighted inputs
    a: tuple[sp.Matrix, ...]  # a^0 = x, ..., a^L
    cost: sp.Expr


def nested_mlp(sizes, activation=sigma) -> NestedMLP:
    """``C = |a^L - y|^2 / 2`` with ``a^l = activation(W^l a^{l-1} + b^l)``, nested."""
    s = mlp_symbols(_sizes(sizes))
    a, zs, As = s.x, [], [s.x]
    for W, b in zip(s.W, s.b):
        z = W * a + b
        a = z.applyfunc(activation)
        zs.append(z)
        As.append(a)
    cost = sum(((a - s.y).applyfunc(lambda e: e**2)), sp.S.Zero) / 2
    return NestedMLP(s, tuple(zs), tuple(As), cost)


def layer_jacobian(W: sp.Matrix, b: sp.Matrix, h: sp.Matrix, activation=sigma) -> sp.Matrix:
    """``d activation(W h + b) / dh`` by ``Matrix.jacobian``: SymPy's, not a formula."""
    return (W * h + b).applyfunc(activation).jacobian(h)


def mlp_delta_textbook(net: NestedMLP, l: int, activation=sigma) -> sp.Matrix:
    """``Sigma'(z^l) (W^{l+1})^T Sigma'(z^{l+1}) ... (W^L)^T Sigma'(z^L) (a^L - y)`` (seed 000).

    Written with the nested z^l so that it can be compared with ``sympy.diff`` of the cost.
    ``Sigma'(z)`` is ``diag(sigma'(z_i))``.
    """
    L = net.s.L
    if isinstance(l, bool) or not isinstance(l, (int, np.integer)) or not 1 <= l <= L:
        raise ValueError(f"l (the layer) must be an integer in 1..{L}, got {l!r}")

    def Sigma(z):
        return sp.diag(*[dact(activation, zi) for zi in z])

    out = Sigma(net.z[L - 1]) * (net.a[L] - net.s.y)
    for m in range(L - 1, l - 1, -1):
        out = Sigma(net.z[m - 1]) * net.s.W[m].T * out
    return out


def mlp_init(seed: int, sizes, dtype=np.float64, scale: float = 1.0):
    """Parameters ``[(W^1, b^1), ...]`` with entries N(0, scale^2), NumPy arrays from ``seed``.

    ``scale`` may be a number or a function of the fan-in (``lambda n: (2 / n) ** 0.5`` is He's).
    """
    sizes = _sizes(sizes)
    rng = np.random.default_rng(seed)
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        sc = scale(n_in) if callable(scale) else scale
        params.append(
            (
                np.asarray(sc * rng.standard_normal((n_out, n_in)), dtype),
                np.asarray(sc * rng.standard_normal(n_out), dtype),
            )
        )
    return params


def mlp_forward(params, x, activation: Callable = jax.nn.sigmoid):
    """``(zs, activations)``: lists of the weighted inputs and of a^0 = x, ..., a^L.

    ``x`` is one input ``(n_0,)``, or a batch of inputs as rows ``(B, n_0)``: then every layer
    computes ``a W^T + b``, one row per input (``W^l`` stays n_l x n_{l-1}).
    """
    if jnp.ndim(x) not in (1, 2):
        raise ValueError(f"x: expected one input (n_0,) or a batch of rows (B, n_0), got shape {jnp.shape(x)}")
    a, zs, As = x, [], [x]
    for W, b in params:
        z = W @ a + b if jnp.ndim(a) == 1 else a @ W.T + b
        a = activation(z)
        zs.append(z)
        As.append(a)
    return zs, As


def mlp_cost(params, x, y, activation: Callable = jax.nn.sigmoid):
    _, As = mlp_forward(params, x, activation)
    return 0.5 * jnp.sum((As[-1] - y) ** 2)


def mlp_deltas_closed(params, x, y, dactivation: Callable = dsigmoid, activation: Callable = jax.nn.sigmoid):
    """``[delta^1, ..., delta^L]`` by the product ``Sigma'(z^l) (W^{l+1})^T delta^{l+1}``.

    ``delta^l = dC/dz^l = dC/db^l``.  The diagonal matrix Sigma' is applied as an elementwise
    product, which is what multiplying by a diagonal matrix is.
    """
    zs, As = mlp_forward(params, x, activation)
    delta = dactivation(zs[-1]) * (As[-1] - y)
    out = [delta]
    for l in range(len(params) - 1, 0, -1):
        delta = dactivation(zs[l - 1]) * (params[l][0].T @ delta)
        out.append(delta)
    return out[::-1]
