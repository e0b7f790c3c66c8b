"""The networks of the claims, built once in SymPy and once in JAX (and mpmath for the truth).

* :mod:`.chain`: the one-neuron chain of depth L in SymPy (seed 000), its per-layer chain
  rule derived once, the gradients as products of per-layer factors;
* :mod:`.chain_numeric`: the same chain in JAX (forward pass, autodiff, the closed forms built
  from the SymPy factors, in log space at any depth) and its 50-digit mpmath truth;
* :mod:`.mlp`: the multi-neuron sigmoid network in SymPy and JAX;
* :mod:`.references`: textbook SymPy references of activations and softmax, written naively.

Every public name of the submodules is re-exported here.
"""

from __future__ import annotations

from . import chain, chain_numeric, mlp, references
from .chain import *  # noqa: F403  (the public names, listed in __all__ below)
from .chain_numeric import *  # noqa: F403
from .mlp import *  # noqa: F403
from .references import *  # noqa: F403

__all__ = [*chain.__all__, *chain_numeric.__all__, *mlp.__all__, *references.__all__]
