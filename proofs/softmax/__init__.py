"""Softmax: normalisation, Jacobian, cross-entropy gradient, shift invariance, overflow (seed 003).

``y_i = e^{a_i} / sum_k e^{a_k}`` for C classes.  Every identity is proved twice: for each
C = 2..6 with explicit symbols (``Matrix.jacobian`` of the softmax), and for a symbolic C in
index form (``IndexedBase`` and ``Sum``; SymPy's ``diff`` produces the Kronecker deltas itself).

The index form needs one fact SymPy cannot know: that the differentiation index j lies in
1..C.  ``diff`` answers with ``Piecewise((..., C >= j), (0, True))``; writing C = j + m with m a
non-negative integer settles the condition without choosing a branch by hand.

Numerics (``softmax.stable``): the textbook form overflows once ``max(a)`` exceeds ln(largest
float), 709.78 in float64 and 88.72 in float32, and the suite finds these thresholds itself by
bisection on the JAX function.  On XLA's CPU backend it goes wrong even earlier: the division
is computed as a multiplication by ``1 / sum``, which is subnormal above 708.40 (87.34) and
flushed to zero, so every output becomes 0; and its Jacobian goes wrong at half that, 354.20
(43.67), because JAX's rule for ``x / s`` uses ``s^-2``.  The shifted form ``a - max(a)`` has
none of this.
"""

from ._forms import CLASSES, F, softmax_naive, softmax_shifted, softmax_sym, softmax_textbook, textbook_jacobian
from ._identities import (
    cross_entropy_grad,
    jacobian,
    shift_invariance,
    shift_violation,
    sums_to_one,
    xent_of_logits,
    xent_textbook,
)
from ._stable import first_outputs, overflow_thresholds, stable

__all__ = [
    "CLASSES",
    "F",
    "cross_entropy_grad",
    "first_outputs",
    "jacobian",
    "overflow_thresholds",
    "shift_invariance",
    "shift_violation",
    "softmax_naive",
    "softmax_shifted",
    "softmax_sym",
    "softmax_textbook",
    "stable",
    "sums_to_one",
    "textbook_jacobian",
    "xent_of_logits",
    "xent_textbook",
]
