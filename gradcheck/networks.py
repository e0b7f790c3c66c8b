"""The networks of the chain-rule claims, built once in SymPy and once in JAX.

Two networks, as the notes draw them (seeds 000 and 001):

* the **one-neuron chain** of depth L: ``z_j = w_j a_{j-1} + b_j``, ``a_j = sigma(z_j)``,
  cost ``C = (a_L - y)^2 / 2``;
* the **multi-neuron MLP**: ``z^l = W^l a^{l-1} + b^l``, ``a^l = sigma(z^l)``, the same cost
  summed over the outputs.

Symbolic API (generic ``sigma``, so that ``sympy.diff`` leaves one ``sigma'(z_j)`` per layer)::

    chain_symbols(L)              -> ChainSymbols   a_0, y, w_j, b_j, z_j, a_j as real Symbols
    C, dC(v)                                        the cost (an undefined function), dC/dv
    nested_chain(L)               -> NestedChain    the network as one nested expression
    layer_rule()                  -> LayerRule      the per-layer chain-rule factors, derived
                                                    ONCE by sympy.diff of one layer followed by
                                                    an arbitrary function G (the rest of the net)
    chain_backward(L)             -> ChainGradient  dC/db_j and dC/dw_j for every j as products
                                                    of per-layer factors: O(L), no nesting
    chain_textbook(L, j)          -> Expr           sigma'(z_j) prod_{k>j} w_k sigma'(z_k) dC/da_L,
                                                    from the general-L Product (``textbook_product``)
    expanded_grad(net, wrt)       -> Expr           sympy.diff of the nested network (swells)
    ChainGradient.nested(expr)    -> Expr           z_j, a_L replaced by the nested network, to
                                                    compare a product with ``expanded_grad``
    chain_reference(expr, L)      -> callable       a ``gradcheck.check`` reference: SymPy
                                                    arrays (a0, w, b, y) -> concrete closed form

JAX API (dtype follows the inputs; wrap calls in ``gradcheck.float64()`` for float64)::

    chain_forward(a0, w, b)             -> (z (L,), a (L+1,))          unrolled to L = 16, lax.scan beyond
    chain_cost(a0, w, b, y)             -> C
    chain_autodiff(a0, w, b, y)         -> (dC/dw, dC/db)             jax.grad of chain_cost
    chain_closed(a0, w, b, y)           -> (dC/dw, dC/db)             suffix cumulative product
    chain_log_closed(a0, w, b, y)       -> (log|dC/db|, sign dC/db)   the same in log space
    closed_form_from(rule)              -> (closed, log_closed)        both, built from the SymPy
                                                                       per-layer factor ``rule``
    chain_truth(a0, w, b, y, dps=50)    -> (log|dC/db|, sign)          mpmath, any depth
    random_chain(seed, L, n)            -> (a0, w, b, y) NumPy batches  N(0, 1) weights and biases

    mlp_symbols(sizes), nested_mlp(sizes), layer_jacobian(W, b, h), mlp_delta_textbook(net, l)
    mlp_init(seed, sizes), mlp_forward(params, x), mlp_cost(params, x, y),
    mlp_deltas_closed(params, x, y)     (the same objects for the multi-neuron network)
    dsigmoid(z), log_dsigmoid(z)        sigma'(z) as sigma(z)(1 - sigma(z)), and its stable log

Example: dC/db_1 of a depth-1024 chain, symbolically and in JAX::

    from gradcheck import networks as nw
    g = nw.chain_backward(1024)            # ~1 s: 2048 factors, one per weight and sigma'
    g.grad_b(1) == nw.chain_textbook(1024)  # True
    a0, w, b, y = nw.random_chain(0, 1024, 1)
    with gradcheck.float64():
        nw.chain_log_closed(a0[0], w[0], b[0], y[0])   # finite where jax.grad gives 0

Why log space: dC/db_1 is a product of L factors each at most 1/4 in absolute value when
abs(w) <= 1, so it underflows float32 to exactly 0 by depth 64 and float64 by depth 1024.  A
comparison of two zeros proves nothing; ``log|dC/db_j|`` is a cumulative *sum* that stays
finite at any depth.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import sympy as sp

from .symbolic import Step, array_symbols, concrete, sigma

__all__ = [
    "C",
    "dC",
    "ChainSymbols",
    "NestedChain",
    "LayerRule",
    "ChainGradient",
    "chain_symbols",
    "nested_chain",
    "layer_rule",
    "chain_backward",
    "textbook_product",
    "chain_textbook",
    "expanded_grad",
    "chain_reference",
    "dsigma",
    "UNROLL_MAX_L",
    "chain_forward",
    "chain_cost",
    "chain_autodiff",
    "closed_form_from",
    "chain_closed",
    "chain_log_closed",
    "chain_truth",
    "random_chain",
    "log_dsigmoid",
    "dsigmoid",
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

#: The cost as an undefined function: ``dC(v)`` names dC/dv on the left-hand sides of steps.
#: (``gradcheck.render`` prints ``Derivative(C(v), v)`` as \partial C / \partial v and puts it
#: last in a product, where the notes write it.)
C = sp.Function("C")


def dC(v) -> sp.Derivative:
    """``dC/dv`` as a name: the unevaluated derivative of the cost with respect to ``v``."""
    return sp.Derivative(C(v), v)


def _depth(L) -> int:
    if isinstance(L, bool) or not isinstance(L, (int, np.integer)) or L < 1:
        raise ValueError(f"L (the depth of the chain) must be a positive integer, got {L!r}")
    return int(L)


def dsigma(x):
    """``sigma'(x)`` as SymPy writes it: an unevaluated derivative of the generic sigma."""
    if isinstance(x, sp.Symbol):
        return sp.Derivative(sigma(x), x)
    xi = sp.Dummy("xi", real=True)
    return sp.Subs(sp.Derivative(sigma(xi), xi), xi, x)


# =====================================================================================
# The one-neuron chain, symbolic
# =====================================================================================
@dataclasses.dataclass(frozen=True)
class ChainSymbols:
    """Real symbols of a depth-L chain; tuples are 1-based in their names (w[0] is w_1)."""

    L: int
    a0: sp.Symbol
    y: sp.Symbol
    w: tuple[sp.Symbol, ...]
    b: tuple[sp.Symbol, ...]
    z: tuple[sp.Symbol, ...]  # z_j as names (the textbook's z_j)
    a: tuple[sp.Symbol, ...]  # a_0 .. a_L as names (a[0] is a0)

    @property
    def params(self) -> tuple[sp.Symbol, ...]:
        return (self.a0, *self.w, *self.b, self.y)


@functools.lru_cache(maxsize=64)
def chain_symbols(L: int) -> ChainSymbols:
    L = _depth(L)
    r = dict(real=True)
    a0, y = sp.Symbol("a_0", **r), sp.Symbol("y", **r)
    w = tuple(sp.Symbol(f"w_{k}", **r) for k in range(1, L + 1))
    b = tuple(sp.Symbol(f"b_{k}", **r) for k in range(1, L + 1))
    z = tuple(sp.Symbol(f"z_{k}", **r) for k in range(1, L + 1))
    a = (a0,) + tuple(sp.Symbol(f"a_{k}", **r) for k in range(1, L + 1))
    return ChainSymbols(L, a0, y, w, b, z, a)


@dataclasses.dataclass(frozen=True)
class NestedChain:
    """The chain as nested expressions of its parameters: what ``sympy.diff`` differentiates."""

    s: ChainSymbols
    z: tuple[sp.Expr, ...]  # z_j = w_j a_{j-1} + b_j, a_{j-1} itself nested
    a: tuple[sp.Expr, ...]  # a_0 .. a_L
    cost: sp.Expr  # (a_L - y)^2 / 2
    activation: sp.Function


def nested_chain(L: int, activation=sigma) -> NestedChain:
    """The depth-L chain ``C = (sigma(w_L sigma(... sigma(w_1 a_0 + b_1) ...) + b_L) - y)^2 / 2``.

    Its size is O(L) (SymPy shares subexpressions), but ``sympy.diff`` of it produces a sum
    whose terms each repeat the nested arguments: use it for small L, and
    :func:`chain_backward` for any L.
    """
    s = chain_symbols(L)
    a, zs, As = s.a0, [], [s.a0]
    for k in range(s.L):
        z = s.w[k] * a + s.b[k]
        a = activation(z)
        zs.append(z)
        As.append(a)
    return NestedChain(s, tuple(zs), tuple(As), (a - s.y) ** 2 / 2, activation)


def expanded_grad(net: NestedChain, wrt: sp.Symbol) -> sp.Expr:
    """``sympy.diff`` of the whole nested network: the reference a product is proved equal to."""
    return sp.diff(net.cost, wrt)


@dataclasses.dataclass(frozen=True)
class LayerRule:
    """The chain rule through one layer ``a = sigma(z)``, ``z = w a_prev + b``, derived once.

    SymPy differentiates ``G(sigma(w a_prev + b))`` for an *undefined* function ``G`` (the
    rest of the network and the cost), with respect to ``b``, ``w`` and ``a_prev``, and
    divides out ``G'``.  What remains does not depend on ``G``: these are the per-layer factors,
    valid whatever follows the layer, which is what makes the product hold at every depth (by
    induction on L, the lemma is the induction step).
    """

    a_prev: sp.Symbol
    w: sp.Symbol
    b: sp.Symbol
    z: sp.Symbol
    a: sp.Symbol
    y: sp.Symbol
    d_db: sp.Expr  # da/db       = sigma'(z)
    d_dw: sp.Expr  # da/dw       = a_prev sigma'(z)
    d_dprev: sp.Expr  # da/da_prev  = w sigma'(z)   (the factor each later layer contributes)
    d_cost: sp.Expr  # dC/da_L     = a_L - y        (sympy.diff of the quadratic cost)
    lemma: tuple[sp.Expr, sp.Expr, sp.Expr]  # the three raw sympy.diff results, G' included
    g_prime: sp.Expr

    def at(self, expr: sp.Expr, k: int, s: ChainSymbols) -> sp.Expr:
        """A factor of this rule for layer ``k`` (1-based) of the chain ``s``."""
        return expr.xreplace({self.a_prev: s.a[k - 1], self.w: s.w[k - 1], self.b: s.b[k - 1], self.z: s.z[k - 1]})


@functools.lru_cache(maxsize=8)
def layer_rule(activation=sigma) -> LayerRule:
    """Derive the per-layer factors once (see :class:`LayerRule`)."""
    r = dict(real=True)
    a_prev, w, b, z, a, y = (sp.Symbol(n, **r) for n in ("a_{prev}", "w", "b", "z", "a", "y"))
    G = sp.Function("G")
    pre = w * a_prev + b
    out = activation(pre)
    g_prime = sp.diff(G(out), out)  # G'(a), as SymPy writes it
    raw = tuple(sp.diff(G(out), v) for v in (b, w, a_prev))
    facs = []
    for d in raw:
        f = sp.cancel(d / g_prime)
        if f.has(G):
            raise AssertionError(f"the factor of one layer still depends on the rest of the net: {f}")
        facs.append(f.subs(pre, z).doit())  # sigma'(w a_prev + b) -> sigma'(z)
    d_cost = sp.diff((a - y) ** 2 / 2, a)
    return LayerRule(a_prev, w, b, z, a, y, facs[0], facs[1], facs[2], d_cost, raw, g_prime)


@dataclasses.dataclass
class ChainGradient:
    """dC/db_j and dC/dw_j of a depth-L chain as products of per-layer factors.

    ``head[j]`` is the factor of layer j+1 for its own bias (``sigma'(z_{j+1})``), ``head_w[j]``
    for its own weight, ``link[j]`` (for j >= 1) what layer j+1 contributes to every gradient
    below it (``w_{j+1} sigma'(z_{j+1})``), ``out`` is dC/da_L.  Products are built on demand,
    so the object costs O(L) whatever L is.
    """

    s: ChainSymbols
    rule: LayerRule
    head: list[sp.Expr]
    head_w: list[sp.Expr]
    link: list[sp.Expr | None]
    out: sp.Expr
    activation: sp.Function = sigma

    @property
    def L(self) -> int:
        return self.s.L

    def factors_b(self, j: int) -> list[sp.Expr]:
        """The factors of dC/db_j in the order the seed writes them: layer j first, dC/da_L last."""
        _check_layer(j, self.L)
        return [self.head[j - 1], *self.link[j:], self.out]

    def factors_w(self, j: int) -> list[sp.Expr]:
        _check_layer(j, self.L)
        return [self.head_w[j - 1], *self.link[j:], self.out]

    def grad_b(self, j: int) -> sp.Expr:
        return sp.Mul(*self.factors_b(j))

    def grad_w(self, j: int) -> sp.Expr:
        return sp.Mul(*self.factors_w(j))

    def seed_form(self, j: int) -> sp.Expr:
        """The product with ``dC/da_L`` left as a name, as the seed writes it.

        A flat SymPy Mul: SymPy orders its factors canonically; ``gradcheck.render`` prints the
        factors of such a product in layer order (sigma'(z_1) w_2 sigma'(z_2) ... dC/da_L).
        """
        return sp.Mul(*self.factors_b(j)[:-1], dC(self.s.a[-1]))

    def nested(self, expr: sp.Expr, net: NestedChain | None = None) -> sp.Expr:
        """Replace the names z_j and a_j by the nested network (small L only: it swells).

        ``sigma'(z_j)`` (a Derivative at the name z_j) becomes the Subs object at the nested
        z_j, exactly what ``sympy.diff`` of the nested network produces; ``xreplace`` swaps
        whole subtrees at once, so this costs O(size of expr).
        """
        net = net or nested_chain(self.L, self.activation)
        rep: dict = {}
        for k in range(self.L):
            z = self.s.z[k]
            rep[sp.Derivative(self.activation(z), z)] = _dact(self.activation, net.z[k])
            rep[z] = net.z[k]
            rep[self.s.a[k + 1]] = net.a[k + 1]
        return expr.xreplace(rep)

    def steps(self, j: int = 1):
        """One step per layer, from the cost back to dC/db_j (claims render these)."""
        s = self.s
        out = [Step(dC(s.a[-1]), self.out, "sympy.diff of the cost (a_L - y)^2/2")]
        for k in range(self.L, j, -1):
            out.append(Step(
                dC(s.a[k - 1]),
                sp.Mul(self.link[k - 1], dC(s.a[k])),
                f"layer {k}: sympy.diff of sigma(w_{k} a_{k - 1} + b_{k}) with respect to a_{k - 1}",
            ))
        out.append(Step(
            dC(s.b[j - 1]),
            sp.Mul(self.head[j - 1], dC(s.a[j])),
            f"layer {j}: sympy.diff of sigma(w_{j} a_{j - 1} + b_{j}) with respect to b_{j}",
        ))
        out.append(Step(dC(s.b[j - 1]), self.seed_form(j),
                        "unrolled: one factor per layer above it"))
        return out


def _check_layer(j, L):
    if isinstance(j, bool) or not isinstance(j, (int, np.integer)) or not 1 <= j <= L:
        raise ValueError(f"j (the layer) must be an integer in 1..{L}, got {j!r}")


def chain_backward(L: int, activation=sigma) -> ChainGradient:
    """All gradients of the depth-L chain from the per-layer rule: O(L) symbolic work.

    This is backpropagation done in SymPy: the factors come from :func:`layer_rule` (derived
    once), instantiated per layer by substitution of symbols, never by differentiating a
    nested expression.
    """
    s = chain_symbols(L)
    rule = layer_rule(activation)
    head = [rule.at(rule.d_db, k, s) for k in range(1, s.L + 1)]
    head_w = [rule.at(rule.d_dw, k, s) for k in range(1, s.L + 1)]
    link: list[sp.Expr | None] = [None] + [rule.at(rule.d_dprev, k, s) for k in range(2, s.L + 1)]
    out = rule.d_cost.xreplace({rule.a: s.a[-1], rule.y: s.y})
    return ChainGradient(s, rule, head, head_w, link, out, activation)


_k, _j, _L = sp.symbols("k j L", integer=True, positive=True)
_W, _Z, _A = sp.IndexedBase("w"), sp.IndexedBase("z"), sp.IndexedBase("a")
_y = sp.Symbol("y", real=True)


def textbook_product():
    """The textbook statement for every depth L and layer j, as one SymPy object.

    ``dC/db_j = sigma'(z_j) Product(w_k sigma'(z_k), (k, j+1, L)) (a_L - y)``, with indexed
    symbols.  Returns ``(expr, (j, L, k), (w, z, a), y)``.
    """
    term = _W[_k] * sp.Derivative(sigma(_Z[_k]), _Z[_k])
    expr = sp.Derivative(sigma(_Z[_j]), _Z[_j]) * sp.Product(term, (_k, _j + 1, _L)) * (_A[_L] - _y)
    return expr, (_j, _L, _k), (_W, _Z, _A), _y


def chain_textbook(L: int, j: int = 1) -> sp.Expr:
    """:func:`textbook_product` at a given depth and layer, in the symbols of ``chain_symbols(L)``.

    The Product is expanded term by term (its term at k = j+1 .. L), which is what
    ``Product.doit()`` does, in O(L) rather than ``doit``'s slower general path; the terms are
    instantiated once per depth, so all L layers together cost O(L^2) multiplications only.
    """
    L = _depth(L)
    _check_layer(j, L)
    heads, terms, tail = _textbook_terms(L)
    return sp.Mul(heads[j - 1], *terms[j:], tail)


@functools.lru_cache(maxsize=8)
def _textbook_terms(L: int):
    """Per layer: the factor outside the Product (at j), the Product's term (at k), the rest."""
    s = chain_symbols(L)
    expr, (jj, LL, _), (W, Z, A), y = textbook_product()
    rep = {y: s.y, A[L]: s.a[L]}
    heads, terms, tail = None, None, []
    for f in sp.Mul.make_args(expr.subs(LL, L)):
        if isinstance(f, sp.Product):
            term, (k, _, _) = f.args[0], f.args[1]
            terms = [term.xreplace({k: sp.Integer(i)}).xreplace({W[i]: s.w[i - 1], Z[i]: s.z[i - 1]})
                     for i in range(1, L + 1)]  # terms[i - 1] is the term at k = i
        elif f.has(jj):
            heads = [f.xreplace({jj: sp.Integer(i)}).xreplace({Z[i]: s.z[i - 1]}) for i in range(1, L + 1)]
        else:
            tail.append(f.xreplace(rep))
    return heads, terms, sp.Mul(*tail)


def chain_reference(expr: sp.Expr, L: int, activation: sp.Lambda | None = None):
    """A ``gradcheck.check`` reference for a closed form of the depth-L chain.

    ``expr`` is written in the names of ``chain_symbols(L)`` (z_j, a_j, sigma'); the reference
    takes SymPy inputs shaped like the JAX arguments ``(a0 (), w (L,), b (L,), y ())`` and
    returns ``expr`` with the network substituted and sigma made concrete (the logistic
    function, or ``activation``).
    """
    g = chain_backward(L)
    nested = g.nested(expr)
    s = g.s
    defs = {} if activation is None else {"sigma": activation}

    def reference(a0, w, b, y):
        rep = {s.a0: a0, s.y: y}
        rep.update({s.w[k]: w[k] for k in range(L)})
        rep.update({s.b[k]: b[k] for k in range(L)})
        return concrete(nested.xreplace(rep), **defs)

    return reference


# =====================================================================================
# The one-neuron chain in JAX
# =====================================================================================
def dsigmoid(z):
    """sigma'(z) = sigma(z)(1 - sigma(z)) (claim sigmoid.derivative): no exp overflow."""
    s = jax.nn.sigmoid(z)
    return s * (1 - s)


def log_dsigmoid(z):
    """log sigma'(z) = log sigma(z) + log sigma(-z), finite for every finite z.

    ``log(s (1 - s))`` computed from ``s`` is -inf once s rounds to 0 or 1 (z beyond about
    +-37 in float64); 1 - sigma(z) = sigma(-z) turns it into two log-sigmoids, each stable.
    """
    return jax.nn.log_sigmoid(z) + jax.nn.log_sigmoid(-z)


#: Chains up to this depth are traced as a Python loop, deeper ones as ``lax.scan``.  Unrolled,
#: a depth-4 chain compiles about twice as fast under ``gradcheck.check`` (which compiles
#: jacfwd, jacrev, jvp and vjp of it); as a scan the compiled program stays the same size at
#: any depth (L = 1024 compiles in about a second).
UNROLL_MAX_L = 16


def chain_forward(a0, w, b, activation: Callable = jax.nn.sigmoid):
    """``(z, a)``: the L weighted inputs and the L+1 activations (a[0] = a0).

    A Python loop up to :data:`UNROLL_MAX_L` layers, ``lax.scan`` beyond (see there why).
    """
    a0 = jnp.asarray(a0)
    if w.shape[0] <= UNROLL_MAX_L:
        a, zs, As = a0, [], [a0]
        for k in range(w.shape[0]):
            z = w[k] * a + b[k]
            a = activation(z)
            zs.append(z)
            As.append(a)
        return jnp.stack(zs), jnp.stack(As)

    def layer(a, wb):
        z = wb[0] * a + wb[1]
        nxt = activation(z)
        return nxt, (z, nxt)

    _, (z, a) = jax.lax.scan(layer, a0, (w, b))
    return z, jnp.concatenate([a0[None], a])


def chain_cost(a0, w, b, y):
    """C = (a_L - y)^2 / 2 of the sigmoid chain."""
    _, a = chain_forward(a0, w, b)
    return 0.5 * (a[-1] - y) ** 2


#: ``(dC/dw, dC/db)`` by reverse-mode autodiff of :func:`chain_cost`.
chain_autodiff = jax.grad(chain_cost, argnums=(1, 2))


def _suffix_prod(x):
    # prod_{k >= i} x[k], multiplied from the output end backwards as backprop does
    return jnp.cumprod(x[::-1])[::-1]


def _suffix_sum(x):
    return jnp.cumsum(x[::-1])[::-1]


def _jax_factor(rule: LayerRule, expr: sp.Expr, log: bool):
    """Lambdify one per-layer factor (a product of w, a_prev and sigma'(z)) to JAX.

    ``sigma'(z)`` becomes :func:`dsigmoid`, or in log space :func:`log_dsigmoid`, so that the
    JAX closed form is built from the factor SymPy derived: drop a factor from the derivation
    and the JAX closed form loses it too.
    """
    ds = sp.Function("dsigma")
    e = expr.replace(lambda n: isinstance(n, sp.Derivative) and n.expr == sigma(rule.z), lambda n: ds(rule.z))
    if e.has(sigma) or e.has(sp.Derivative):
        raise ValueError(f"a per-layer factor must be a product of w, a_prev and sigma'(z), got {expr}")
    args = (rule.w, rule.a_prev, rule.z)
    if not log:
        return sp.lambdify(args, e, modules=[{"dsigma": dsigmoid}, "jax"])
    logs, sign = [], sp.S.One
    for f in sp.Mul.make_args(e):
        if isinstance(f, sp.Pow) and f.exp.is_integer:
            base, n = f.base, f.exp
        else:
            base, n = f, 1
        if base.func == ds:
            logs.append(n * sp.Function("logdsigma")(*base.args))
        else:
            logs.append(n * sp.log(sp.Abs(base)))
            sign *= sp.sign(base) ** n
    lf = sp.lambdify(args, sp.Add(*logs), modules=[{"logdsigma": log_dsigmoid}, "jax"])
    sf = sp.lambdify(args, sign, modules="jax")
    return lf, sf


def closed_form_from(rule: LayerRule | None = None):
    """``(closed, log_closed)``: the product form of every gradient, from a per-layer rule.

    ``closed(a0, w, b, y) -> (dC/dw, dC/db)``: the suffix cumulative product of the factors.
    ``log_closed(a0, w, b, y) -> (log|dC/db|, sign(dC/db))``: the same as a cumulative sum of
    logarithms, finite at any depth.
    """
    rule = rule or layer_rule()
    f_b, f_w, f_link = (_jax_factor(rule, e, False) for e in (rule.d_db, rule.d_dw, rule.d_dprev))
    (lf_b, sf_b), (lf_link, sf_link) = (_jax_factor(rule, e, True) for e in (rule.d_db, rule.d_dprev))

    def closed(a0, w, b, y):
        z, a = chain_forward(a0, w, b)
        a_prev = a[:-1]
        link = f_link(w, a_prev, z) * jnp.ones_like(z)  # layer k's factor for layers below
        below = jnp.concatenate([_suffix_prod(link[1:]), jnp.ones_like(z[:1])])  # prod_{k>j}
        out = a[-1] - y
        db = f_b(w, a_prev, z) * jnp.ones_like(z) * below * out
        dw = f_w(w, a_prev, z) * jnp.ones_like(z) * below * out
        return dw, db

    def log_closed(a0, w, b, y):
        z, a = chain_forward(a0, w, b)
        a_prev = a[:-1]
        one = jnp.ones_like(z)
        ll, sl = lf_link(w, a_prev, z) * one, sf_link(w, a_prev, z) * one
        below_log = jnp.concatenate([_suffix_sum(ll[1:]), jnp.zeros_like(z[:1])])
        below_sign = jnp.concatenate([_suffix_prod(sl[1:]), jnp.ones_like(z[:1])])
        out = a[-1] - y
        log_db = lf_b(w, a_prev, z) * one + below_log + jnp.log(jnp.abs(out))
        sign_db = sf_b(w, a_prev, z) * one * below_sign * jnp.sign(out)
        return log_db, sign_db

    return closed, log_closed


@functools.lru_cache(maxsize=1)
def _default_closed():
    return closed_form_from(layer_rule())


def chain_closed(a0, w, b, y):
    """``(dC/dw, dC/db)`` of the sigmoid chain from the derived per-layer factors (cumprod)."""
    return _default_closed()[0](a0, w, b, y)


def chain_log_closed(a0, w, b, y):
    """``(log|dC/db|, sign(dC/db))`` of the sigmoid chain, a cumulative sum: any depth."""
    return _default_closed()[1](a0, w, b, y)


def chain_truth(a0, w, b, y, dps: int = 50):
    """``(log|dC/db_j|, sign)`` for every layer with ``dps`` digits (mpmath), at any depth.

    The forward pass and the per-layer factors are evaluated in mpmath (its exponent range is
    unbounded, so nothing underflows), then combined as the proved product.  Inputs are
    float64 scalars and 1-D arrays; returns two float64 arrays of length L.
    """
    w = [mpmath.mpf(float(v)) for v in np.asarray(w, dtype=np.float64)]
    b = [mpmath.mpf(float(v)) for v in np.asarray(b, dtype=np.float64)]
    L = len(w)
    with mpmath.workdps(dps):
        a = mpmath.mpf(float(a0))
        ds = []
        for k in range(L):
            z = w[k] * a + b[k]
            # e^{-|z|} / (1 + e^{-|z|})^2: s (1 - s) would cancel to nothing for large z
            e = mpmath.exp(-abs(z))
            ds.append(e / (1 + e) ** 2)
            a = 1 / (1 + mpmath.exp(-z))
        out = a - mpmath.mpf(float(y))
        logs = np.empty(L)
        signs = np.empty(L)
        acc, sgn = mpmath.log(abs(out)) if out != 0 else -mpmath.inf, mpmath.sign(out)
        for j in range(L - 1, -1, -1):
            logs[j] = float(mpmath.log(ds[j]) + acc)
            signs[j] = float(sgn)
            link = w[j] * ds[j]
            acc = acc + (mpmath.log(abs(link)) if link != 0 else -mpmath.inf)
            sgn = sgn * mpmath.sign(link)
    return logs, signs


def random_chain(seed: int, L: int, n: int, dtype=np.float64, scale: float = 1.0):
    """``n`` random chains of depth L as NumPy batches ``(a0 (n,), w (n, L), b (n, L), y (n,))``.

    w, b ~ N(0, scale^2), a0, y ~ U(0, 1), from ``numpy.random.default_rng(seed)``.  NumPy,
    not ``jax.random``: every eager JAX operation compiles a small program of its own (about
    0.1 to 0.4 s each on a busy CPU), and the draws are the same on every backend.
    """
    L = _depth(L)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n (the number of chains) must be a positive integer, got {n!r}")
    rng = np.random.default_rng(seed)
    w = scale * rng.standard_normal((n, L))
    b = scale * rng.standard_normal((n, L))
    a0 = rng.uniform(size=n)
    y = rng.uniform(size=n)
    return tuple(np.asarray(v, dtype=dtype) for v in (a0, w, b, y))


# =====================================================================================
# The multi-neuron network
# =====================================================================================
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
        return sp.diag(*[_dact(activation, zi) for zi in z])

    out = Sigma(net.z[L - 1]) * (net.a[L] - net.s.y)
    for m in range(L - 1, l - 1, -1):
        out = Sigma(net.z[m - 1]) * net.s.W[m].T * out
    return out


def _dact(activation, x):
    xi = sp.Dummy("xi", real=True)
    return sp.Subs(sp.Derivative(activation(xi), xi), xi, x)


def mlp_init(seed: int, sizes, dtype=np.float64, scale: float = 1.0):
    """Parameters ``[(W^1, b^1), ...]`` with entries N(0, scale^2), NumPy arrays from ``seed``.

    ``scale`` may be a number or a function of the fan-in (``lambda n: (2 / n) ** 0.5`` is He's).
    """
    sizes = _sizes(sizes)
    rng = np.random.default_rng(seed)
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        sc = scale(n_in) if callable(scale) else scale
        params.append((np.asarray(sc * rng.standard_normal((n_out, n_in)), dtype),
                       np.asarray(sc * rng.standard_normal(n_out), dtype)))
    return params


def mlp_forward(params, x, activation: Callable = jax.nn.sigmoid):
    """``(zs, activations)``: lists of the weighted inputs and of a^0 = x, ..., a^L."""
    a, zs, As = x, [], [x]
    for W, b in params:
        z = W @ a + b
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


