"""Stage 1 of a check: every argument validated into a frozen :class:`Spec`, before any work.

Arguments of ``fn`` may be pytrees (dicts, lists, tuples, NamedTuples of arrays, as in Flax,
Equinox and Optax code).  They are flattened here, once: the rest of the engine sees a flat
list of leaves, each an array of at most two dimensions, with a printable name per leaf
(``params['W']``), and a ``fn``/``reference`` pair that take and return those leaves.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from .. import _profiles
from .._x64 import dtype_context
from ._pytree import flatten_shapes, leaf_domains as domains_per_leaf

__all__ = ["TOLERANCES", "TINY_INPUT", "Spec", "validate", "PATHS", "ENTRIES_LIMIT", "SYMBOLIC_BUDGET", "choose_path"]
__all__ += ["VALIDATED"]

#: Default tolerances per dtype.  An entry passes when
#: ``|got - truth| <= atol + rtol * |truth| + 16 eps * cond``.
#: ``cond`` is how far rounding of intermediate results as large as the inputs can move the
#: result: for a value f_k, ``sum_j |df_k/dx_j| |x_j|``; for a derivative, ``sum_l |H_kjl| |x_l|``
#: (the Hessian of the truth, computed only where a disagreement is confirmed); for the
#: random-direction probes the same summed over the direction's terms (and ``|truth|`` is
#: replaced by the magnitude of the terms summed, ``|J| |t|``).  So a cancellation in a correct
#: function is no false alarm (x @ W in float32 with terms of 5000 summing to 0.01), while the
#: relative test stays ``rtol`` wherever the result is well conditioned.  ``atol`` absorbs
#: rounding of results that are themselves cancellations of terms the condition does not see:
#: one ulp of O(1) terms times whatever factors follow (``1 - tanh(x)^2`` at large x;
#: jax.nn.gelu's float32 derivative at x = -5 is 0 against a truth of -1.5e-6), or of logits
#: (the softmax cross-entropy gradient at logits of 700 is 1.6e-13 and float64 gives 2.8e-13).
#: So in float32 a derivative below 1e-5 in magnitude cannot be told from rounding; in float64
#: the floor is 1e-12.  (A floor that grows with |x| was tried and rejected: it hides wrong O(1)
#: outputs of normalising functions at huge inputs, such as a naive clip-by-norm at 1e300.)
#: Second derivatives go through one more rule: their tolerances are ``order2_factor`` wider.
TOLERANCES: dict[str, dict[str, float]] = {
    "float64": {"rtol": 1e-7, "atol": 1e-12, "order2_factor": 10.0},
    "float32": {"rtol": 2e-4, "atol": 1e-5, "order2_factor": 10.0},
}

#: Nonzero inputs smaller than this in magnitude are not drawn (0 itself is): their squares
#: underflow, so any function that squares its input (a norm, a variance) loses every digit
#: there; that is the dtype's range, not a wrong rule.
TINY_INPUT = {"float64": 1e-150, "float32": 1e-17}

#: How the truth's derivatives are obtained: ``entries`` differentiates the reference entry by
#: entry in SymPy (exact, every Jacobian/Hessian entry compared, cheap only while small);
#: ``probes`` differentiates its values along random directions (JVP, VJP, Hessian-vector
#: products) by automatic differentiation of the SymPy DAG in NumPy, at O(n) per point.
PATHS = ("auto", "entries", "probes")

#: ``path="auto"`` takes ``entries`` while the derivatives to expand are at most this many
#: (K * N for order 1, K * N * N for order 2) and the inputs at most ``INPUTS_LIMIT``.
ENTRIES_LIMIT = 512
INPUTS_LIMIT = 16
#: below both limits, ``path="auto"`` also weighs the expansion's cost in SymPy operations (the
#: entries times a sampled entry's tree), beyond which the probes path is quicker.  Measured on
#: 2 CPU cores, order 2, float64, 100 points (entries s / probes s at that cost): logsumexp of 16
#: 2.0 / 1.5 at 9,472; softmax of 8 3.3 / 1.2 at 22,016; layer norm of 6 35.6 / 3.1 at 99,576;
#: of 8 15.0 / 1.6 at 379,904
SYMBOLIC_BUDGET = 50_000


@dataclasses.dataclass(frozen=True)
class Spec:
    """A validated check: what is checked, on which leaves, how, with which tolerances."""

    fn: Callable  # the user's function
    reference: Callable | None
    fn_name: str
    shapes: list  # as the user gave them (pytrees allowed), for the report
    leaf_shapes: tuple  # one shape per leaf
    leaf_names: tuple  # printable name per leaf: x, params['W']
    leaf_arg: tuple  # the top-level argument of each leaf
    leaf_domains: tuple  # (lo, hi) per leaf
    order: int
    dtype: str
    rtol: float
    atol: float
    order2_factor: float
    seed: int
    max_examples: int
    hypothesis_examples: int
    path: str
    out_names: tuple  # per flat output entry
    out_shape: tuple  # fn's output shape when a single array, else (K,)
    flat_fn: Callable  # leaves -> 1-D output vector (or fn itself when nothing is a pytree)
    flat_reference: Callable | None  # SymPy leaves -> SymPy expression / Matrix
    pytree: bool
    out_pytree: bool = False
    # args=: the user's values, flat float64; fn runs at origin + each point (a perturbation)
    origin: np.ndarray | None = dataclasses.field(default=None, compare=False)


# --------------------------------------------------------------------------------------------
def _normalize_dtype(dtype) -> str:
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = str(dtype)
    if name not in TOLERANCES:
        raise ValueError(f"dtype must be 'float64', 'float32', 'complex128' or 'complex64', got {dtype!r}")
    return name


def choose_path(path: str, n_in: int, n_out: int, order: int, cost: int | None = None) -> tuple[str, str]:
    """``entries`` while expanding the derivatives entry by entry is cheap, else ``probes``; and
    why, in words.  ``cost``: the expansion's SymPy operations
    (:func:`~gradcheck.oracles.reference.expansion_cost`), against :data:`SYMBOLIC_BUDGET`."""
    if path != "auto":
        return path, "asked for"
    entries = n_out * n_in * (n_in if order == 2 else 1)
    if entries > ENTRIES_LIMIT or n_in > INPUTS_LIMIT:
        return "probes", f"{n_in} inputs, {n_out} outputs: expanding {entries} derivative entries would be too slow"
    if cost is not None and cost > SYMBOLIC_BUDGET:
        return "probes", (
            f"expanding {entries} derivative entries would cost about {cost:,} SymPy operations "
            f"(> {SYMBOLIC_BUDGET:,}): longer than the sweep"
        )
    return "entries", ""


def arg_names_of(fn, n: int) -> list[str]:
    try:
        params = [
            p
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        names = [p.name for p in params[:n]]
    except (TypeError, ValueError):
        names = []
    return names + [f"arg{i}" for i in range(len(names), n)]


def fn_name_of(fn) -> str:
    return getattr(fn, "__name__", None) or getattr(getattr(fn, "func", None), "__name__", None) or type(fn).__name__


def _index_name(name, shape, flat_i):
    if not shape:
        return name
    return f"{name}[{', '.join(map(str, np.unravel_index(flat_i, shape)))}]"


# --------------------------------------------------------------------------------------------
def validate(
    fn,
    reference,
    shapes,
    domain,
    order,
    dtype,
    max_examples,
    seed,
    rtol,
    atol,
    hypothesis_examples,
    path,
) -> Spec:
    """Every argument checked, cheaply, before any long work; errors name the argument."""
    if not callable(fn):
        raise TypeError(f"fn must be a callable JAX function, got {type(fn).__name__}")
    if reference is not None and not callable(reference):
        raise TypeError(
            f"reference must be a callable building a SymPy expression (or None for a "
            f"numerical truth), got {type(reference).__name__}"
        )
    dtype = _normalize_dtype(dtype)
    per_arg, pytree = flatten_shapes(shapes)
    if order not in (1, 2) or isinstance(order, bool):
        raise ValueError(f"order must be 1 (first derivatives) or 2 (second derivatives too), got {order!r}")
    if max_examples is None:
        max_examples = _profiles.default_examples()
    if not isinstance(max_examples, (int, np.integer)) or isinstance(max_examples, bool) or max_examples < 1:
        raise ValueError(f"max_examples must be a positive integer, got {max_examples!r}")
    if seed is None:
        seed = _profiles.default_seed()
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if path not in PATHS:
        raise ValueError(f"path must be one of {PATHS}, got {path!r}")
    leaf_domains = domains_per_leaf(domain, per_arg, dtype)
    tol = dict(TOLERANCES[dtype])
    for name, v in (("rtol", rtol), ("atol", atol)):
        if v is not None:
            if not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
            tol[name] = float(v)
    if hypothesis_examples is None:
        hypothesis_examples = min(_profiles.PROFILES[_profiles.current_profile()]["hypothesis_examples"], max_examples)
    if (
        not isinstance(hypothesis_examples, (int, np.integer))
        or isinstance(hypothesis_examples, bool)
        or hypothesis_examples < 0
    ):
        raise ValueError(f"hypothesis_examples must be an integer >= 0, got {hypothesis_examples!r}")
    n_args = len(per_arg)
    arg_names = arg_names_of(fn, n_args)
    try:
        inspect.signature(fn).bind(*[None] * n_args)
    except TypeError as e:
        raise ValueError(
            f"shapes gives {n_args} argument shape(s) ({list(shapes)}) but fn cannot be called with "
            f"{n_args} argument(s): {e}; give one shape per argument of fn"
        ) from None
    except ValueError:
        pass

    leaf_shapes, leaf_names, leaf_arg = [], [], []
    for a, (_treedef, leaves) in enumerate(per_arg):
        for p, s in leaves:
            leaf_shapes.append(s)
            leaf_names.append(arg_names[a] + jax.tree_util.keystr(p))
            leaf_arg.append(a)
    treedefs = tuple(t for t, _ in per_arg)
    counts = [len(leaves) for _, leaves in per_arg]

    def unflatten(leaves):
        out, i = [], 0
        for t, c in zip(treedefs, counts):
            part = list(leaves[i : i + c])
            out.append(part[0] if t is None else jax.tree_util.tree_unflatten(t, part))
            i += c
        return out

    # trace fn abstractly on the leaves: the output's structure, shape and dtype
    with dtype_context(dtype):
        specs = unflatten([jax.ShapeDtypeStruct(s, dtype) for s in leaf_shapes])
        try:
            out = jax.eval_shape(fn, *specs)
        except Exception as e:
            raise TypeError(
                f"fn is not traceable by JAX on arrays of shapes {list(shapes)} ({dtype}): "
                f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            ) from e
    out_leaves, out_def = jax.tree_util.tree_flatten_with_path(out)
    if not out_leaves:
        raise TypeError(f"fn must return an array or a pytree of arrays, got {out!r}")
    for p, leaf in out_leaves:
        if not isinstance(leaf, jax.ShapeDtypeStruct):
            raise TypeError(f"fn must return arrays, got {type(leaf).__name__} at output{jax.tree_util.keystr(p)}")
        if not jnp.issubdtype(leaf.dtype, jnp.floating):
            raise TypeError(
                f"fn must return a floating-point array, got dtype {leaf.dtype}"
                + (f" at output{jax.tree_util.keystr(p)}" if p else "")
            )
    single = len(out_leaves) == 1 and not out_leaves[0][0]
    if single and len(out_leaves[0][1].shape) > 2:
        raise ValueError(f"fn must return a scalar, vector or matrix, got shape {out_leaves[0][1].shape}")
    if single and not pytree:
        out_shape = tuple(out_leaves[0][1].shape)
        out_names = tuple(_index_name("out", out_shape, k) for k in range(int(np.prod(out_shape)) if out_shape else 1))
        flat_fn = fn
        flat_reference = reference
    else:
        names = []
        for p, leaf in out_leaves:
            base = "out" + jax.tree_util.keystr(p)
            n = int(np.prod(leaf.shape)) if leaf.shape else 1
            names += [_index_name(base, leaf.shape, k) for k in range(n)]
        out_names = tuple(names)
        out_shape = (len(names),)

        def flat_fn(*leaves):
            res = fn(*unflatten(leaves))
            return jnp.concatenate([jnp.ravel(v) for v in jax.tree_util.tree_leaves(res)])

        flat_fn.__name__ = fn_name_of(fn)

        def flat_reference(*leaves):
            res = reference(*unflatten(leaves))
            parts = jax.tree_util.tree_leaves(res, is_leaf=lambda v: isinstance(v, (sp.Basic, sp.MatrixBase)))
            flat = []
            for v in parts:
                if isinstance(v, sp.MatrixBase):
                    flat += list(v)  # row-major, as jnp.ravel
                else:
                    flat.append(sp.sympify(v))
            return sp.Matrix(flat)

    return Spec(
        fn=fn,
        reference=reference,
        fn_name=fn_name_of(fn),
        shapes=list(shapes),
        leaf_shapes=tuple(leaf_shapes),
        leaf_names=tuple(leaf_names),
        leaf_arg=tuple(leaf_arg),
        leaf_domains=tuple(leaf_domains),
        order=int(order),
        dtype=dtype,
        rtol=tol["rtol"],
        atol=tol["atol"],
        order2_factor=tol["order2_factor"],
        seed=int(seed),
        max_examples=int(max_examples),
        hypothesis_examples=int(hypothesis_examples),
        path=path,
        out_names=out_names,
        out_shape=out_shape,
        flat_fn=flat_fn,
        flat_reference=flat_reference if reference is not None else None,
        pytree=pytree,
        out_pytree=not single,
    )


#: The arguments of :func:`gradcheck.check` that :func:`validate` reads, by name (check passes
#: them on as it has them, not as a second copy of this list).
VALIDATED = tuple(inspect.signature(validate).parameters)
