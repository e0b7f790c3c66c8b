"""The one-neuron chain of seed 000 (Nielsen's argument): vanishing, exploding, unstable.

The network is ``z_j = w_j a_{j-1} + b_j``, ``a_j = sigma(z_j)``, ``C = (a_L - y)^2 / 2``
(:mod:`gradcheck.models` builds it).  Every gradient is derived by SymPy from the per-layer
chain-rule factor, which :func:`gradcheck.models.layer_rule` derives once by ``sympy.diff``
of one layer followed by an *undefined* function G (the rest of the network): that lemma is the
induction step that makes the product hold at every depth, so depth L costs O(L) symbolic work
instead of a nested expression that swells.  For L = 1..8 the product is also shown equal to
``sympy.diff`` of the fully nested network.

Claims: chain.grad_b1, chain.grad_bj (both take the depth ``L``, default 4 as in the seed),
chain.term_bound, chain.ratio_b1_b3, chain.exploding, chain.window, chain.unstable.
"""

from ._bounds import exploding, ratio_b1_b3, term_bound, term_bound_attack
from ._gradients import EXPANDED_MAX_L, TRUTH_POINTS, grad_b1, grad_bj, log_space_check
from ._window import UNSTABLE_DEPTH, UNSTABLE_NETS, claimed_width, measure_unstable, unstable, window

__all__ = [
    "EXPANDED_MAX_L",
    "TRUTH_POINTS",
    "UNSTABLE_DEPTH",
    "UNSTABLE_NETS",
    "claimed_width",
    "exploding",
    "grad_b1",
    "grad_bj",
    "log_space_check",
    "measure_unstable",
    "ratio_b1_b3",
    "term_bound",
    "term_bound_attack",
    "unstable",
    "window",
]
