"""The one-neuron chain of the chain-rule claims, in SymPy (seed 000).

The chain of depth L: ``z_j = w_j a_{j-1} + b_j``, ``a_j = sigma(z_j)``, cost
``C = (a_L - y)^2 / 2``, built with the generic ``sigma`` so that ``sympy.diff`` leaves one
``sigma'(z_j)`` per layer::

    chain_symbols(L)              -> ChainSymbols   a_0, y, w_j, b_j, z_j, a_j as real Symbols
    C, dC(v)                                        the cost (an undefined function), dC/dv
    dsigma(x), dact(f, x)         -> Expr           sigma'(x), f'(x) as SymPy writes them
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

The same chain in JAX and in mpmath: :mod:`gradcheck.models.chain_numeric`.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import sympy as sp

from ..symbolic import Step, concrete, sigma

__all__ = [
    "C",
    "dC",
    "dsigma",
    "dact",
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


def dact(activation, x):
    """``activation'(x)`` as ``sympy.diff`` of a nested network writes it: a Subs at ``x``."""
    xi = sp.Dummy("xi", real=True)
    return sp.Subs(sp.Derivative(activation(xi), xi), xi, x)


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
            rep[sp.Derivative(self.activation(z), z)] = dact(self.activation, net.z[k])
            rep[z] = net.z[k]
            rep[self.s.a[k + 1]] = net.a[k + 1]
        return expr.xreplace(rep)

    def steps(self, j: int = 1):
        """One step per layer, from the cost back to dC/db_j (claims render these)."""
        s = self.s
        out = [Step(dC(s.a[-1]), self.out, "sympy.diff of the cost (a_L - y)^2/2")]
        for k in range(self.L, j, -1):
            out.append(
                Step(
                    dC(s.a[k - 1]),
                    sp.Mul(self.link[k - 1], dC(s.a[k])),
                    f"layer {k}: sympy.diff of sigma(w_{k} a_{k - 1} + b_{k}) with respect to a_{k - 1}",
                )
            )
        out.append(
            Step(
                dC(s.b[j - 1]),
                sp.Mul(self.head[j - 1], dC(s.a[j])),
                f"layer {j}: sympy.diff of sigma(w_{j} a_{j - 1} + b_{j}) with respect to b_{j}",
            )
        )
        out.append(Step(dC(s.b[j - 1]), self.seed_form(j), "unrolled: one factor per layer above it"))
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
            terms = [
                term.xreplace({k: sp.Integer(i)}).xreplace({W[i]: s.w[i - 1], Z[i]: s.z[i - 1]})
                for i in range(1, L + 1)
            ]  # terms[i - 1] is the term at k = i
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
