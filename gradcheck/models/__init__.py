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

from .chain import (
    C as C,
)
from .chain import (
    ChainGradient as ChainGradient,
)
from .chain import (
    ChainSymbols as ChainSymbols,
)
from .chain import (
    LayerRule as LayerRule,
)
from .chain import (
    NestedChain as NestedChain,
)
from .chain import (
    chain_backward as chain_backward,
)
from .chain import (
    chain_reference as chain_reference,
)
from .chain import (
    chain_symbols as chain_symbols,
)
from .chain import (
    chain_textbook as chain_textbook,
)
from .chain import (
    dact as dact,
)
from .chain import (
    dC as dC,
)
from .chain import (
    dsigma as dsigma,
)
from .chain import (
    expanded_grad as expanded_grad,
)
from .chain import (
    layer_rule as layer_rule,
)
from .chain import (
    nested_chain as nested_chain,
)
from .chain import (
    textbook_product as textbook_product,
)
from .chain_numeric import (
    UNROLL_MAX_L as UNROLL_MAX_L,
)
from .chain_numeric import (
    chain_autodiff as chain_autodiff,
)
from .chain_numeric import (
    chain_closed as chain_closed,
)
from .chain_numeric import (
    chain_cost as chain_cost,
)
from .chain_numeric import (
    chain_forward as chain_forward,
)
from .chain_numeric import (
    chain_log_closed as chain_log_closed,
)
from .chain_numeric import (
    chain_truth as chain_truth,
)
from .chain_numeric import (
    closed_form_from as closed_form_from,
)
from .chain_numeric import (
    dsigmoid as dsigmoid,
)
from .chain_numeric import (
    log_dsigmoid as log_dsigmoid,
)
from .chain_numeric import (
    random_chain as random_chain,
)
from .mlp import (
    MLPSymbols as MLPSymbols,
)
from .mlp import (
    NestedMLP as NestedMLP,
)
from .mlp import (
    layer_jacobian as layer_jacobian,
)
from .mlp import (
    mlp_cost as mlp_cost,
)
from .mlp import (
    mlp_delta_textbook as mlp_delta_textbook,
)
from .mlp import (
    mlp_deltas_closed as mlp_deltas_closed,
)
from .mlp import (
    mlp_forward as mlp_forward,
)
from .mlp import (
    mlp_init as mlp_init,
)
from .mlp import (
    mlp_symbols as mlp_symbols,
)
from .mlp import (
    nested_mlp as nested_mlp,
)
from .references import (
    gelu_exact_ref as gelu_exact_ref,
)
from .references import (
    log_softmax_ref as log_softmax_ref,
)
from .references import (
    logsumexp_ref as logsumexp_ref,
)
from .references import (
    relu_ref as relu_ref,
)
from .references import (
    sigmoid_ref as sigmoid_ref,
)
from .references import (
    softmax_ref as softmax_ref,
)
from .references import (
    softplus_ref as softplus_ref,
)

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
    "dsigmoid",
    "log_dsigmoid",
    "UNROLL_MAX_L",
    "chain_forward",
    "chain_cost",
    "chain_autodiff",
    "closed_form_from",
    "chain_closed",
    "chain_log_closed",
    "chain_truth",
    "random_chain",
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
    "sigmoid_ref",
    "softmax_ref",
    "log_softmax_ref",
    "logsumexp_ref",
    "softplus_ref",
    "gelu_exact_ref",
    "relu_ref",
]
