"""The claim catalogue: one module per topic.

Each module builds its claims from the engine (``gradcheck``) and declares them with
:func:`claim` (the id is ``module.function``; the sources are the notes' file names).  The
package is a gradcheck catalogue, declared under the entry-point group ``gradcheck.catalogues``
(pyproject.toml), so ``gradcheck list`` loads it when no ``--catalogue`` is named.  Import a
topic and use its claims directly::

    from proofs import softmax
    softmax.jacobian.latex()            # the statement, as an equation body with a \\label
    softmax.jacobian.run().reached      # ('proved', 'verified')

Out of scope, though the notes mention them (seed 002): layer-wise pre-training and capsule
networks.  Neither is a statement about gradients that SymPy or JAX can check: pre-training is
a training procedure whose benefit is empirical and data-dependent, and capsules are an
architecture; the notes give no formula for either.
"""

from collections.abc import Callable, Iterable

from gradcheck.catalogue import Claim, claim as _declare

__all__ = ["SEEDS", "FIGURES", "CLAIM_FIGURES", "OUT_OF_SCOPE", "claim", "sources"]

#: The source notes the claims come from, by their three-digit prefix.  The project cites
#: them by name; it never reads them.
SEEDS = {
    "000": "000_48fafa9910b50dec.txt",  # one-neuron chain, Nielsen's argument
    "001": "001_1861a09d8fa92c9f.txt",  # MLP Jacobians and ReLU
    "002": "002_5222ebc1bbc2933c.txt",  # causes and remedies
    "003": "003_e50f9bff32cdfab8.txt",  # quadratic vs cross-entropy cost, softmax
}

#: The report's figures (``module:function`` builders that draw from the claims' findings, see
#: :mod:`gradcheck.render.figures`): drawn whenever this catalogue is in a report.
FIGURES = tuple(f"gradcheck.render.figures:{name}" for name in ("sigmoid", "tanh", "window", "softmax_overflow"))
#: Figures of one claim: drawn when the claim is in the report.
CLAIM_FIGURES = {"backprop.layer_speeds": "gradcheck.render.figures:layer_speeds"}

OUT_OF_SCOPE = {
    "pretraining": "layer-wise pre-training (seed 002): a training procedure whose benefit is "
    "empirical and data-dependent; the note states no gradient identity to check",
    "capsules": "capsule networks (seed 002): an architecture named as an alternative; the note "
    "states no gradient identity to check",
}


def sources(seeds: Iterable[str]) -> tuple[str, ...]:
    """The file names of the notes that ``seeds`` name by prefix (``"001"`` or the whole name)."""
    if isinstance(seeds, str):
        raise TypeError(f"seeds must be a tuple of note prefixes, got the string {seeds!r}")
    out = []
    for s in seeds:
        if s[:3] not in SEEDS:
            raise ValueError(f"seeds must name notes of {sorted(SEEDS.values())}, got {s!r}")
        out.append(SEEDS[s[:3]])
    return tuple(out)


def claim(*, seeds: Iterable[str], **declaration) -> Callable[[Callable], Claim]:
    """:func:`gradcheck.catalogue.claim` with the seeds checked against :data:`SEEDS`: the claim's
    ``sources`` are the notes' file names."""
    return _declare(sources=sources(seeds), **declaration)
