"""The claim catalogue: one module per topic.

Each module builds its claims from the engine (``gradcheck``) and registers them; import a
topic and use its claims directly::

    from proofs import softmax
    softmax.jacobian.latex()            # the statement, as an equation body with a \\label
    softmax.jacobian.run().reached      # ('proved', 'verified')

Out of scope, though the notes mention them (seed 002): layer-wise pre-training and capsule
networks.  Neither is a statement about gradients that SymPy or JAX can check: pre-training is
a training procedure whose benefit is empirical and data-dependent, and capsules are an
architecture; the notes give no formula for either.
"""

OUT_OF_SCOPE = {
    "pretraining": "layer-wise pre-training (seed 002): a training procedure whose benefit is "
    "empirical and data-dependent; the note states no gradient identity to check",
    "capsules": "capsule networks (seed 002): an architecture named as an alternative; the note "
    "states no gradient identity to check",
}
