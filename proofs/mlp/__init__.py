"""Multi-neuron sigmoid networks: backpropagated errors and layer Jacobians (seeds 000, 001, 002).

The network is ``z^l = W^l a^{l-1} + b^l``, ``a^l = sigma(z^l)``, ``C = |a^L - y|^2 / 2``
(:mod:`gradcheck.models`).  SymPy differentiates the nested network entry by entry
(``sympy.diff``, ``Matrix.jacobian``) with a generic sigma, so every ``sigma'`` stays a factor,
and the result is proved equal to the matrix products the notes write.

Claims: mlp.delta, mlp.layer_jacobian, mlp.product_of_jacobians.
"""

# the checks' helpers, re-exported so that mlp._same_matrix and the like still resolve (the tests use them)
from ._common import (
    RANDOM_SIZES,
    _max_err as _max_err,
    _random_mlp_batch as _random_mlp_batch,
    _same_matrix as _same_matrix,
)
from ._delta import delta
from ._jacobians import layer_jacobian, layer_jacobian_closed, layer_jacobian_jax, layer_textbook, product_of_jacobians

__all__ = [
    "RANDOM_SIZES",
    "delta",
    "layer_jacobian",
    "layer_jacobian_closed",
    "layer_jacobian_jax",
    "layer_textbook",
    "product_of_jacobians",
]
