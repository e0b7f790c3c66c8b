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
    dC as dC,
    dsigma as dsigma,
    dact as dact,
    ChainSymbols as ChainSymbols,
    NestedChain as NestedChain,
    LayerRule as LayerRule,
    ChainGradient as ChainGradient,
    chain_symbols as chain_symbols,
    nested_chain as nested_chain,
    layer_rule as layer_rule,
    chain_backward as chain_backward,
    textbook_product as textbook_product,
    chain_textbook as chain_textbook,
    expanded_grad as expanded_grad,
    chain_reference as chain_reference,
)
from .chain_numeric import (
    dsigmoid as dsigmoid,
    log_dsigmoid as log_dsigmoid,
    UNROLL_MAX_L as UNROLL_MAX_L,
    chain_forward as chain_forward,
    chain_cost as chain_cost,
    chain_autodiff as chain_autodiff,
    closed_form_from as closed_form_from,
    chain_closed as chain_closed,
    chain_log_closed as chain_log_closed,
    chain_truth as chain_truth,
    random_chain as random_chain,
)
from .mlp import (
    MLPSymbols as MLPSymbols,
    NestedMLP as NestedMLP,
    mlp_symbols as mlp_symbols,
    nested_mlp as nested_mlp,
    layer_jacobian as layer_jacobian,
    mlp_delta_textbook as mlp_delta_textbook,
    mlp_init as mlp_init,
    mlp_forward as mlp_forward,
    mlp_cost as mlp_cost,
    mlp_deltas_closed as mlp_deltas_closed,
)
from .references import (
    sigmoid_ref as sigmoid_ref,
    softmax_ref as softmax_ref,
    log_softmax_ref as log_softmax_ref,
    logsumexp_ref as logsumexp_ref,
    softplus_ref as softplus_ref,
    gelu_exact_ref as gelu_exact_ref,
    relu_ref as relu_ref,
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
