"""The Jacobian of a linear map (seed 001): d(Ax)/dx = A.

Claim: linear.jacobian.
"""

from __future__ import annotations

import functools

import jax
import numpy as np
import sympy as sp

import gradcheck
from gradcheck.catalogue import Derivation, Step, evidence
from gradcheck.symbolic import array_symbols
from proofs import claim

#: Shapes (m, n) proved besides the claim's own: square, wide, tall, and the 1 x 1 edge case.
SHAPES = ((1, 1), (2, 3), (3, 2), (4, 4))


def matvec(A, x):
    return A @ x


@claim(
    seeds=("001",),
    expected=("proved", "verified"),
    title=r"The Jacobian of $x \mapsto A x$ is $A$",
    statement=r"$\partial (A x)/\partial x = A$: row $i$ of the Jacobian is the gradient of the $i$-th output, "
    r"$(a_{i1}, \ldots, a_{in})$",
    params={"shape": (3, 4)},
)
def jacobian(shape=(3, 4)) -> Derivation:
    m, n = shape
    A, x = array_symbols("A", (m, n)), array_symbols("x", (n,))
    Ax = A * x
    J = Ax.jacobian(x)
    others = {}
    for mm, nn in SHAPES:
        Ai, xi = array_symbols("A", (mm, nn)), array_symbols("x", (nn,))
        others[(mm, nn)] = ((Ai * xi).jacobian(xi), Ai)
    return Derivation(
        statement=sp.Eq(sp.Symbol(r"\frac{\partial (A x)}{\partial x}"), sp.MatrixSymbol("A", m, n), evaluate=False),
        steps=[
            Step(sp.Symbol("A x"), Ax, "row i is f_i(x) = sum_j a_ij x_j"),
            Step(
                sp.Symbol(r"\frac{\partial (A x)}{\partial x}"),
                J,
                "Matrix.jacobian: row i is the gradient of f_i, (a_i1, ..., a_in)",
            ),
        ],
        objects={"A": A, "x": x, "J": J, "shape": (m, n), "others": others},
    )


@functools.lru_cache(maxsize=1)
def _jac_program():
    return jax.jit(jax.vmap(jax.jacfwd(matvec, argnums=1)))


@jacobian.verifier
def _(d: Derivation, s, fn=matvec):
    shapes = [d["shape"], *d["others"]]
    ok = d["J"] == d["A"] and all(J == A for J, A in d["others"].values())
    yield evidence.fact(
        ok,
        f"Matrix.jacobian of A x with respect to x is A for shapes {shapes}",
        "Matrix.jacobian; the result is A itself, entry for entry",
    )
    m, n = d["shape"]
    with gradcheck.float64():
        checked = evidence.checked(
            fn,
            lambda A, x: A * x,
            "A @ x and its derivatives with respect to A and x agree with SymPy's (gradcheck.check, float64)",
            s,
            shapes=[(m, n), (n,)],
            domain=(-1e3, 1e3),
            order=1,
            dtype="float64",
        )
    yield checked
    rng = np.random.default_rng(s.seed)
    A = rng.standard_normal((s.max_examples, m, n))
    x = rng.standard_normal((s.max_examples, n))
    with gradcheck.float64():
        J = np.asarray(_jac_program()(A, x))
    exact = bool(np.array_equal(J, A))
    yield evidence.fact(
        exact,
        f"jax.jacfwd of A @ x with respect to x returns A exactly (bit for bit) for {s.max_examples} "
        "random A (float64, jitted, vmapped)",
        "jax.jacfwd",
        verdict="verified",
        examples=s.max_examples,
        seed=s.seed,
        dtype="float64",
    )
