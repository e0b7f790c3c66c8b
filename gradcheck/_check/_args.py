"""``check(fn, None, args=(model, batch))``: a check at the argument values the user already has.

The arguments are any pytrees (an Equinox module, a Flax params dict, a NamedTuple, plain arrays),
as ``jax.test_util.check_grads`` takes them.  Their leaves fall in two groups, as
``equinox.filter_grad`` splits them:

* **differentiated**: inexact (floating-point) arrays with at least one entry; a complex one
  as its real and imaginary parts (``Re x``, ``Im x``), as a complex ``dtype=`` is checked;
* **held fixed**: everything else (integer and boolean arrays, PRNG keys, Python numbers, an
  Equinox module's activation functions and other non-array fields).

The check samples *perturbations* of the differentiated leaves: the point ``delta = 0`` (the
user's own values) is always checked, and the other points move each entry by at most ``radius``
times its leaf's scale (the root mean square of the leaf; for an all-zero leaf, such as a bias
initialised to 0, that of the argument's other leaves, else 1).  ``radius`` defaults to
:data:`RADIUS`.  ``fn`` runs at the values plus the perturbations (``Spec.origin``, added by the
engine before anything runs), as a function of the values (:func:`_of_values`): the values
reach the compiled programs as their points, never as constants inside them, so that a later
check of the same fn and structure at other values finds its programs compiled.

Written with ``jax.tree_util`` rather than ``equinox.partition``: Equinox is not a dependency
of gradcheck (Flax users and plain-pytree users do not have it), and the test it applies,
``equinox.is_inexact_array``, is one line (:func:`is_inexact_array`).
"""

from __future__ import annotations

import collections
import dataclasses
import io
import math
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._files import write_whole
from ._complex import COMPLEX
from ._spec import fn_name_of

__all__ = ["RADIUS", "AtValues", "array_repr", "at_values", "given_args", "is_inexact_array", "load_args"]

#: the default perturbation radius, relative to each leaf's scale (its root mean square)
RADIUS = 0.1

# a complex leaf is checked as its real and imaginary parts (:mod:`._complex`), two leaves of
# the real dtype of its precision (``COMPLEX``), each perturbed by the radius of the leaf's modulus
_RE, _IM = ".real", ".imag"


def is_inexact_array(x: Any) -> bool:
    """A floating-point array (NumPy or JAX), as ``equinox.is_inexact_array`` decides."""
    if not isinstance(x, (np.ndarray, np.generic, jax.Array)):
        return False
    dt = x.dtype
    if jax.dtypes.issubdtype(dt, jax.dtypes.extended):  # PRNG keys
        return False
    return bool(jnp.issubdtype(dt, jnp.inexact))


@dataclasses.dataclass(frozen=True)
class AtValues:
    """What :func:`check` runs on: ``fn`` of perturbations of the differentiated leaves."""

    fn: Callable  # fn(*values): one dict {path: value} per argument that has differentiated leaves
    shapes: list  # one dict {path: shape} per such argument (a leaf above 2-D flattened)
    domain: list  # one dict {path: (-r, r)} per such argument
    dtype: str
    names: tuple[str, ...]  # the differentiated leaves, in the order the check flattens them
    fixed: tuple[str, ...]  # the leaves held fixed, each with what it is
    base: tuple[np.ndarray, ...]  # the user's values of the differentiated leaves, in ``names``' order
    radius: float
    used: tuple[int, ...]  # fn's argument of each of ``fn``'s arguments (those with a differentiated leaf)
    arg_names: tuple[str, ...]  # fn's own argument names
    keys: tuple[str, ...]  # per differentiated leaf, its key in a failure file: argument index + path

    @property
    def origin(self) -> np.ndarray:
        """The user's values as one flat float64 vector, in the check's order of entries: the
        points fn runs at are this plus the perturbations (``Spec.origin``)."""
        return np.concatenate([np.ravel(np.asarray(b, np.float64)) for b in self.base])

    def save(self, leaves: Sequence[np.ndarray], fn_name: str, seed: int, index: int) -> str:
        """Write the differentiated leaves at a failing point to an ``.npz`` file, whole, in the
        temporary folder; :func:`load_args` puts them back into the args."""
        buf = io.BytesIO()
        arrays: dict[str, Any] = {k: np.asarray(v) for k, v in zip(self.keys, leaves)}
        np.savez(buf, **arrays)
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", fn_name) or "fn"
        path = os.path.join(tempfile.gettempdir(), f"gradcheck-{stem}-seed{seed}-failure{index}.npz")
        write_whole(path, buf.getvalue())
        return path

    def absolute(self, deltas: Sequence[np.ndarray]) -> tuple[np.ndarray, ...]:
        """The differentiated leaves at a checked point: the user's values plus the deltas."""
        return tuple(
            (np.asarray(b, np.float64) + np.asarray(d, np.float64).reshape(b.shape)).astype(b.dtype)
            for b, d in zip(self.base, deltas)
        )

    def named(self, spec: Any) -> Any:
        """``spec`` with the leaves named as the user's pytrees name them."""
        return dataclasses.replace(
            spec,
            leaf_names=self.names,
            leaf_arg=tuple(self.used[a] for a in spec.leaf_arg),
            origin=self.origin,
        )

    def at_values_of(self, spec: Any, failures: list, *others: list, valued: Sequence = ()) -> tuple[list, ...]:
        """Failures with their inputs as the leaves' values (not the perturbations that were
        checked), each failure's whole input saved to a file (:meth:`save`), ``valued`` (whose
        inputs are values already: accuracy findings, measured where fn ran) after them."""
        groups = [[dataclasses.replace(f, input=self.absolute(f.input)) if f.input else f for f in g] for g in others]
        inputs = [self.absolute(f.input) if f.input else () for f in failures] + [tuple(f.input) for f in valued]
        saved = [
            dataclasses.replace(f, input=ins, input_file=self.save(ins, spec.fn_name, spec.seed, i)) if ins else f
            for i, (f, ins) in enumerate(zip([*failures, *valued], inputs), 1)
        ]
        return (saved, *groups)

    def describe(self) -> str:
        """One line for the report."""
        n = sum(int(b.size) for b in self.base)
        shown = ", ".join(self.names[:6]) + (", ..." if len(self.names) > 6 else "")
        fixed = (
            f"; held fixed: {', '.join(self.fixed[:6])}{', ...' if len(self.fixed) > 6 else ''}"
            if self.fixed
            else "; nothing held fixed"
        )
        return (
            f"at the given args: {len(self.names)} leaves differentiated ({n:,} entries: {shown}){fixed}; "
            f"points: the given values and perturbations of each entry up to {self.radius:g} x its leaf's "
            "root mean square"
        )


def _what(leaf: Any) -> str:
    if callable(leaf):
        return f"function {getattr(leaf, '__name__', type(leaf).__name__)}"
    dt = getattr(leaf, "dtype", None)
    if dt is not None:
        if jax.dtypes.issubdtype(dt, jax.dtypes.extended):
            return "PRNG key"
        if np.size(leaf) == 0:
            return "empty array"
        return f"{dt} array"
    return type(leaf).__name__


def _rms(a: np.ndarray) -> float:
    a = np.abs(np.asarray(a)).astype(np.float64)  # the modulus of a complex leaf
    a = a[np.isfinite(a)]
    return float(np.sqrt(np.mean(a * a))) if a.size else 0.0


def _check_radius(radius: Any) -> float:
    if radius is None:
        return RADIUS
    if isinstance(radius, bool) or not isinstance(radius, (int, float)) or not (math.isfinite(radius) and radius > 0):
        raise ValueError(f"radius must be a finite number > 0 (relative to each leaf's scale), got {radius!r}")
    return float(radius)


def given_args(fn: Callable, reference: Any, args: Any, radius: Any, dtype: Any, box: bool) -> AtValues | None:
    """:class:`AtValues` for ``check(..., args=args)``, None without ``args``; ``box``: whether
    ``shapes=`` or ``domain=`` was given too (refused with ``args=``)."""
    if args is None:
        if radius is not None:
            raise TypeError("radius= is the perturbation radius of args=; without args= the domain sets the points")
        return None
    if reference is not None:
        raise TypeError(
            "args= checks fn at the given values with reference=None (the numerical truth); "
            "for a SymPy reference give shapes= and domain= instead"
        )
    if box:
        raise TypeError("give either args= (fn's argument values) or shapes=/domain=, not both")
    return at_values(fn, args, radius, dtype)


def at_values(fn: Callable, args: Any, radius: Any = None, dtype: Any = None) -> AtValues:
    """Split ``args`` into differentiated and fixed leaves, and build the function of deltas."""
    if not isinstance(args, (tuple, list)):
        raise TypeError(
            f"args must be a tuple of fn's arguments, as check_grads takes them (e.g. args=(model, x)), "
            f"got {type(args).__name__}"
        )
    if not args:
        raise ValueError("args must hold at least one argument of fn")
    radius = _check_radius(radius)
    from ._spec import arg_names_of  # the same names a shapes= check gives

    arg_names = arg_names_of(fn, len(args))
    per_arg = []  # (treedef, leaves, {leaf index: path string}) per argument
    fixed: list[str] = []
    dtypes: dict[str, list[str]] = {}
    for a, arg in enumerate(args):
        with_path, treedef = jax.tree_util.tree_flatten_with_path(arg)
        leaves = [leaf for _, leaf in with_path]
        diff = {}
        for i, (p, leaf) in enumerate(with_path):
            name = arg_names[a] + jax.tree_util.keystr(p)
            if is_inexact_array(leaf) and np.size(leaf) > 0:
                diff[i] = jax.tree_util.keystr(p)
                dt = np.dtype(leaf.dtype).name
                dtypes.setdefault(COMPLEX.get(dt, dt), []).append(f"{name} is {dt}")
            else:
                fixed.append(f"{name} ({_what(leaf)})")
        per_arg.append((treedef, leaves, diff))
    if not dtypes:
        raise TypeError(
            "args holds no floating-point array to differentiate (integer arrays, keys and functions are held fixed)"
        )
    unsupported = sorted(set(dtypes) - {"float32", "float64"})
    if unsupported:
        raise TypeError(
            f"args leaves must be float32, float64, complex64 or complex128 to be checked; {dtypes[unsupported[0]][0]}"
        )
    if len(dtypes) > 1:
        raise TypeError(
            "args mixes single and double precision leaves "
            f"({dtypes['float32'][0]}, {dtypes['float64'][0]}): give them one precision"
        )
    (found,) = dtypes
    if dtype is not None and COMPLEX.get(np.dtype(dtype).name, np.dtype(dtype).name) != found:
        raise ValueError(f"dtype={dtype!r} but the args' floating-point leaves are {found}: leave dtype out")

    shapes, domain, used, names, base, keys = [], [], [], [], [], []
    for a, (_treedef, leaves, diff) in enumerate(per_arg):
        if not diff:
            continue
        vals = {i: np.asarray(leaves[i]) for i in diff}
        fallback = _rms(np.concatenate([v.ravel() for v in vals.values()])) or 1.0
        sh, dom = {}, {}
        parts = {}  # delta key -> (name, value): a complex leaf is two real parts
        for i, key in diff.items():
            v = vals[i]
            r = radius * (_rms(v) or fallback)  # of |v| for a complex leaf
            split = [(_RE, "Re ", v.real), (_IM, "Im ", v.imag)] if np.iscomplexobj(v) else [("", "", v)]
            for suffix, part, value in split:
                parts[key + suffix] = (f"{part}{arg_names[a]}{key}", value)
                sh[key + suffix] = v.shape if v.ndim <= 2 else (v.size,)
                dom[key + suffix] = (-r, r)
        # the check flattens each dict in sorted key order: record names and values in that order
        for key in sorted(sh):
            name, v = parts[key]
            names.append(name)
            keys.append(f"{a}{key}")
            base.append(v)
        shapes.append(sh)
        domain.append(dom)
        used.append(a)

    at = _of_values(fn, args, per_arg)
    return AtValues(
        fn=at,
        shapes=shapes,
        domain=domain,
        dtype=found,
        names=tuple(names),
        fixed=tuple(fixed),
        base=tuple(base),
        radius=radius,
        used=tuple(used),
        arg_names=tuple(arg_names),
        keys=tuple(keys),
    )


#: functions of the values (:func:`_of_values`), one per (fn, structure, fixed leaves), newest last
_OF_VALUES: collections.OrderedDict = collections.OrderedDict()
_OF_VALUES_SIZE = 64


def leaf_key(leaf: Any, differentiated: bool) -> Any:
    """What of a leaf the function of the values depends on: a differentiated leaf's shape and
    dtype (its values come in as the points), a fixed array's values, any other leaf itself."""
    if differentiated:
        return ("differentiated", np.shape(leaf), np.dtype(leaf.dtype).str)
    if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.extended):  # PRNG keys
        return ("keys", str(leaf.dtype), leaf.shape, np.asarray(jax.random.key_data(leaf)).tobytes())
    if isinstance(leaf, (np.ndarray, np.generic, jax.Array)):
        data = np.asarray(leaf)
        return ("array", str(data.dtype), data.shape, data.tobytes())
    return (type(leaf), leaf)


def _of_values(fn: Callable, args: Sequence, per_arg: list) -> Callable:
    """``fn`` of the differentiated leaves' values, one dict ``{path: value}`` per argument that
    has any (a complex leaf as its two parts), the other leaves held at the given ones.

    The values reach the compiled programs as their points, never as constants inside them: the
    same function object serves every call with the same ``fn``, pytree structure and fixed
    leaves, so that a second check of the same model at other values finds its programs compiled
    (the programs are cached per function, as ``jax.jit`` caches per function)."""
    used = {a for a, (_t, _l, diff) in enumerate(per_arg) if diff}
    try:
        key = (
            fn,
            tuple(
                (a, treedef, tuple(leaf_key(leaf, i in diff) for i, leaf in enumerate(leaves)))
                if a in used
                else (a, "fixed", tuple(leaf_key(leaf, False) for leaf in jax.tree_util.tree_leaves(args[a])))
                for a, (treedef, leaves, diff) in enumerate(per_arg)
            ),
            tuple(jax.tree_util.tree_structure(arg) for a, arg in enumerate(args) if a not in used),
        )
        hit = _OF_VALUES.get(key)
    except Exception:  # a leaf unhashable, or whose == is no bool (an array-like): this call's alone
        key, hit = None, None
    if hit is not None:
        _OF_VALUES.move_to_end(key)
        return hit
    # held: the fixed leaves (and the arguments with no differentiated leaf) only, not the values
    fixed = [None if a in used else arg for a, arg in enumerate(args)]
    layout = {
        a: (
            treedef,
            [None if i in diff else leaf for i, leaf in enumerate(leaves)],
            {i: (k, np.shape(leaves[i]), np.iscomplexobj(leaves[i])) for i, k in diff.items()},
        )
        for a, (treedef, leaves, diff) in enumerate(per_arg)
        if a in used
    }

    def at(*values: Any) -> Any:
        full = list(fixed)
        for a, d in zip(sorted(layout), values):
            treedef, leaves, diff = layout[a]
            new = list(leaves)
            for i, (k, shape, cplx) in diff.items():
                v = jax.lax.complex(d[k + _RE], d[k + _IM]) if cplx else d[k]
                new[i] = jnp.reshape(v, shape)
            full[a] = jax.tree_util.tree_unflatten(treedef, new)
        return fn(*full)

    at.__name__ = fn_name_of(fn)
    if key is not None:
        _OF_VALUES[key] = at
        while len(_OF_VALUES) > _OF_VALUES_SIZE:
            _OF_VALUES.popitem(last=False)
    return at


def load_args(path: str | os.PathLike, args: Sequence) -> tuple:
    """``args`` with its floating-point leaves replaced by those saved in a failure file (the
    ``input file`` of a failure of ``check(..., args=args)``): the args at the failing point, for
    the replay line or a debugger.  Leaves not in the file stay as they are."""
    with np.load(os.fspath(path)) as saved:
        values = {k: saved[k] for k in saved.files}
    out = []
    for a, arg in enumerate(args):
        with_path, treedef = jax.tree_util.tree_flatten_with_path(arg)
        leaves = []
        for p, leaf in with_path:
            key = f"{a}{jax.tree_util.keystr(p)}"
            if key + _RE in values and is_inexact_array(leaf):  # a complex leaf: its two parts
                values[key] = values.pop(key + _RE) + 1j * values.pop(key + _IM)
            if key in values and is_inexact_array(leaf):
                v = values.pop(key)
                v = v.reshape(np.shape(leaf))
                leaf = jnp.asarray(v, leaf.dtype) if isinstance(leaf, jax.Array) else np.asarray(v, leaf.dtype)
            leaves.append(leaf)
        out.append(jax.tree_util.tree_unflatten(treedef, leaves))
    if values:
        raise ValueError(f"load_args: {path} holds leaves that args does not have: {sorted(values)[:4]}")
    return tuple(out)


def array_repr(a: np.ndarray) -> str:
    """An input array as printed: whole up to 64 entries, else summarised by its dtype, shape
    and range (the failing entry is named in ``entry``; ``seed`` replays the whole input)."""
    if a.size <= 64:
        return np.array2string(a, precision=17, separator=", ")
    head = f"{a.dtype.name} {tuple(a.shape)}"
    flat = a.ravel()
    if np.all(flat == flat[0]):
        return f"<{head}: every entry {float(flat[0])!r}>"
    with np.errstate(all="ignore"):
        return f"<{head}: {float(np.min(a)):.6g} to {float(np.max(a)):.6g}, mean {float(np.mean(a)):.6g}>"
