"""Remedies for vanishing and exploding gradients (seed 002, section 3).

Seed 002 lists: pre-training and fine-tuning (3.1), gradient clipping and weight regularisation
(3.2), ReLU-type activations (3.3, see ``proofs.activations``), batch normalisation (3.4) and
residual connections (3.5), and it mentions Hinton's capsules (2.1).  Each remedy that is a
statement about gradients becomes a claim here:

* ``remedies.clipping``: clipping by norm bounds the norm and keeps the direction.
* ``remedies.l2``: the gradient of (y - W^T x)^2 + alpha ||W||^2, whose 2 alpha W term pulls
  large weights back (weight decay).
* ``remedies.residual``: d(x + F(x))/dx = I + dF/dx, and the product of such Jacobians does not
  vanish where the plain product does (measured over random sigmoid networks).
* ``remedies.batchnorm``: batch norm of W x is invariant to W -> c W, so its gradient is
  orthogonal to W and scales as 1/c.
* ``remedies.init_variance``: Glorot and He initialisation keep the backpropagated gradient's
  variance roughly constant from layer to layer (measured).

Out of scope, with the reason (also in ``proofs.OUT_OF_SCOPE``): layer-wise **pre-training**
(3.1) is a training procedure whose benefit is empirical and depends on data; the note states
no gradient identity to check.  **Capsule networks** are named (2.1) as an architecture meant
to abandon backpropagation; the note gives no formula either.
"""

from ._clipping import c, clip_by_norm, clip_sym, clip_violation, clipping, l2, l2_loss, unit_scale
from ._layers import (
    OFFSETS,
    batch_norm,
    batchnorm,
    bn_offset,
    bn_offset_sym,
    bn_sym,
    bn_violation,
    residual,
    residual_contrast,
)
from ._variance import INIT_SCHEMES, gradient_variances, init_variance

__all__ = [
    "INIT_SCHEMES",
    "OFFSETS",
    "batch_norm",
    "batchnorm",
    "bn_offset",
    "bn_offset_sym",
    "bn_sym",
    "bn_violation",
    "c",
    "clip_by_norm",
    "clip_sym",
    "clip_violation",
    "clipping",
    "gradient_variances",
    "init_variance",
    "l2",
    "l2_loss",
    "residual",
    "residual_contrast",
    "unit_scale",
]
