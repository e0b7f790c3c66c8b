"""Quadratic cost against cross-entropy for a sigmoid neuron (seed 003).

Seed 003 (after Nielsen, chapter 3) explains why a sigmoid neuron with the quadratic cost
learns *slowly when it is badly wrong*: the gradient carries a factor sigma'(z), which is tiny
when the output saturates; the cross-entropy cost's gradient has no such factor, because
d/da of the cost contributes 1/(sigma (1 - sigma)) and sigma' = sigma (1 - sigma) cancels it.

Notation: the seed writes ``z = sigma(a)``, ``a = w^T x + b`` and then ``dCost/dw = (a - y)
sigma'(z) x``, mixing the two letters.  Here, as in Nielsen, ``z = w^T x + b`` is the
pre-activation and ``a = sigma(z)`` the output.

Everything is derived with the *generic* sigma (``gradcheck.symbolic.sigma``), so SymPy's chain
rule leaves the sigma'(z) factor visible; the cancellation is then shown by substituting
sigma' = sigma (1 - sigma) (proved in ``sigmoid.derivative``, and again here).

Claims: costs.quadratic_sigmoid, costs.cross_entropy_sigmoid, costs.slow_learning.
"""

from ._forms import (
    DSIGMA,
    b,
    cancel_sigma_prime,
    cross_entropy,
    name_preactivation,
    quadratic_cost,
    simplify_in_sigma,
    y,
    z,
)
from ._gradients import cross_entropy_jax, cross_entropy_reference, cross_entropy_sigmoid, quadratic_sigmoid
from ._slow_learning import EPOCHS, LEARNING_RATE, STARTS, epochs_below, slow_learning, slow_learning_figures, train

__all__ = [
    "DSIGMA",
    "EPOCHS",
    "LEARNING_RATE",
    "STARTS",
    "b",
    "cancel_sigma_prime",
    "cross_entropy",
    "cross_entropy_jax",
    "cross_entropy_reference",
    "cross_entropy_sigmoid",
    "epochs_below",
    "name_preactivation",
    "quadratic_cost",
    "quadratic_sigmoid",
    "simplify_in_sigma",
    "slow_learning",
    "slow_learning_figures",
    "train",
    "y",
    "z",
]
