"""Complex functions: checked as the real function of their inputs' real and imaginary parts.

A complex argument ``z`` of ``fn`` becomes the pair ``{"re": x, "im": y}`` with ``z = x + i y``;
a complex output ``w`` becomes ``{"re": Re w, "im": Im w}`` (a real output, a loss, stays as it
is).  The check then runs on that real function ``g``, whose derivatives JAX computes by
running ``fn``'s own complex rules (a ``custom_jvp`` is called with the complex tangent
``t = t_x + i t_y``, a ``custom_vjp`` with the complex cotangent):

* ``g``'s JVP along ``(t_x, t_y)`` is the real and imaginary part of JAX's
  ``jvp(fn)(z; t) = df/dz t + df/dz̄ t̄``;
* ``g``'s VJP of ``(a, b)`` is read from JAX's ``vjp(fn)(z; c) = c df/dz + c̄ conj(df/dz̄)``
  (no conjugate transpose: JAX's convention), which JAX's transposes of ``real``, ``imag``
  and ``complex`` turn into the real adjoint of the JVP.

So a rule wrong off the real line (``cos(conj(z)) t`` for ``sin``) or a missing conjugation
in a ``custom_vjp`` makes ``g``'s derivatives wrong, and the real check sees it.  The truths
are those of real checks: a SymPy reference is called on ``x + I y`` (real symbols) and its
result split with ``expand_complex`` into real and imaginary parts; ``reference=None``
differentiates ``g`` along the real and the imaginary part of each tangent.  Branch cuts of
``log``, ``sqrt``, ``asin``, ``atan``... are kinks of the split reference (``arg``, ``atan2``;
:func:`gradcheck.oracles._expressions.kink_expressions`): a point on a cut is not judged, the
points beside it are.  Failures name ``Re z[1]`` and ``Im z[1]``, and print ``z`` as complex.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from ._pytree import _is_pair

__all__ = [
    "COMPLEX",
    "complex_name",
    "complex_check",
    "realify",
    "relabel",
    "cast_dtype",
    "perturbed",
    "real_view",
    "delta_shape",
]

#: The complex dtypes and the real dtype their parts are checked in.
COMPLEX = {"complex64": "float32", "complex128": "float64"}
_PARTS = ("re", "im")
# "z['re'][1]" -> "Re z[1]", "p['im']['W'][0, 1]" -> "Im p['W'][0, 1]", "out['re']" -> "Re out"
_NAME = re.compile(r"([A-Za-z_]\w*)\['(re|im)'\]((?:\[[^\]]*\])*)")


def complex_name(dtype) -> str | None:
    """``"complex64"`` / ``"complex128"`` where ``dtype`` names one, else None."""
    if dtype is None:
        return None
    try:
        name = np.dtype(dtype).name
    except TypeError:
        return None
    return name if name in COMPLEX else None


class Realified(NamedTuple):
    fn: Callable
    reference: Callable | None
    shapes: list
    domain: Any
    dtype: str  # the parts' real dtype


_CACHE: dict = {}  # fn (or reference) -> its real form: the engine's caches are keyed by it


def _cached(key, build):
    if not isinstance(key, Hashable):
        return build()
    if key not in _CACHE:
        _CACHE[key] = build()
    return _CACHE[key]


def realify(fn: Callable, reference: Callable | None, shapes, domain, dtype: str) -> Realified:
    """The real check of a complex one (see the module's docstring).  ``domain`` bounds the real
    and the imaginary part alike: one pair, or one per argument (a pair or a pytree of pairs)."""
    shapes = list(shapes)
    g_shapes = [{"im": s, "re": s} for s in shapes]
    if _is_pair(domain) or not isinstance(domain, (tuple, list)) or len(domain) != len(shapes):
        g_domain = domain  # one pair for every part (or wrong: the real check says how)
    else:
        g_domain = [d if _is_pair(d) else {"im": d, "re": d} for d in domain]
    g = _cached(("fn", fn), lambda: _real_fn(fn))
    ref = (
        None
        if reference is None
        else _cached(("ref", reference, repr(shapes), dtype), lambda: _real_ref(reference, fn, shapes, dtype))
    )
    return Realified(g, ref, g_shapes, g_domain, COMPLEX[dtype])


def _join(a):
    return jax.tree_util.tree_map(lambda x, y: jax.lax.complex(x, y), a["re"], a["im"])


def _split(w):
    if jnp.iscomplexobj(w):
        return {"im": jnp.imag(w), "re": jnp.real(w)}
    return w


def _real_fn(fn: Callable) -> Callable:
    def g(*args):
        return jax.tree_util.tree_map(_split, fn(*[_join(a) for a in args]))

    from ._spec import fn_name_of

    g.__name__ = fn_name_of(fn)
    try:  # fn's own argument names ("z", not "arg0")
        g.__signature__ = inspect.signature(fn)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        pass
    return g


def _real_ref(reference: Callable, fn: Callable, shapes: list, dtype: str) -> Callable:
    """The reference of the real check: ``reference`` called on ``x + I y`` and split into real
    and imaginary parts where ``fn``'s output is complex (read from ``fn``'s abstract trace)."""
    try:
        args = [
            jax.tree_util.tree_map(lambda s: jax.ShapeDtypeStruct(tuple(s), dtype), s, is_leaf=_is_shape)
            for s in shapes
        ]
        out = jax.eval_shape(fn, *args)
        complex_out = [jnp.iscomplexobj(o) for o in jax.tree_util.tree_leaves(out)]
    except Exception:  # fn cannot trace: the real check says so, naming the argument
        complex_out = []

    def ref(*syms):
        z = [jax.tree_util.tree_map(lambda x, y: x + sp.I * y, a["re"], a["im"]) for a in syms]
        out = reference(*z)
        leaves, treedef = jax.tree_util.tree_flatten(out if not isinstance(out, (list, tuple)) else sp.Matrix(out))
        parts = []
        for i, e in enumerate(leaves):
            re_, im_ = _parts(e)
            parts.append({"im": im_, "re": re_} if i < len(complex_out) and complex_out[i] else re_)
        return jax.tree_util.tree_unflatten(treedef, parts)

    ref.__name__ = getattr(reference, "__name__", "reference")
    return ref


def _is_shape(s) -> bool:
    return isinstance(s, tuple) and all(isinstance(n, int) for n in s)


def _parts(e):
    """(real part, imaginary part) of a SymPy expression or Matrix of real symbols."""
    if isinstance(e, sp.MatrixBase):
        pairs = [_parts(v) for v in e]
        return sp.Matrix(e.rows, e.cols, [p[0] for p in pairs]), sp.Matrix(e.rows, e.cols, [p[1] for p in pairs])
    return sp.expand_complex(sp.sympify(e)).as_real_imag()


def _named(s: str) -> str:
    return _NAME.sub(lambda m: f"{m.group(2).capitalize()} {m.group(1)}{m.group(3)}", s)


def _joined(flat, shapes) -> list[str]:
    """The real check's flat input (per argument its imaginary parts, then its real parts: the
    pair's keys sorted) as the complex entries of fn's arguments, printed."""
    out, off = [], 0
    for s in shapes:
        n = sum(int(np.prod(v)) for v in jax.tree_util.tree_leaves(s, is_leaf=_is_shape))
        im, re_ = flat[off : off + n], flat[off + n : off + 2 * n]
        out += [f"{complex(a, b):.6g}" for a, b in zip(re_, im)]
        off += 2 * n
    return out


def relabel(report, shapes, domain, dtype: str):
    """The real check's report in the complex function's terms: the dtype, the shapes, the
    parts named ``Re z[1]`` / ``Im z[1]``, and each failing input joined back into complex."""

    def failure(f):
        names, values = list(f.input_names), list(f.input)
        joined: dict[str, Any] = {}
        for n, v in zip(names, values):
            m = _NAME.fullmatch(n)
            if m is None:
                joined[n] = v
                continue
            key = m.group(1) + m.group(3)
            have = joined.get(key, np.zeros(np.shape(v), dtype))
            joined[key] = have + (np.asarray(v) if m.group(2) == "re" else 1j * np.asarray(v)).astype(dtype)
        plain = all("[" not in k for k in joined)  # complex arrays, not pytrees: print as fn's args
        return dataclasses.replace(
            f,
            argument_name=None if f.argument_name is None else _named(f.argument_name),
            entry=_named(f.entry),
            diagnosis=_named(f.diagnosis),
            message=_named(f.message),
            input=tuple(joined.values()),
            input_names=() if plain else tuple(joined),
        )

    for field in ("failures", "accuracy_notes", "range_limits", "undefined_spill"):
        setattr(report, field, [failure(f) for f in getattr(report, field)])
    report.accuracy = [
        {**r, "quantity": _named(r["quantity"]), "input_shown": _joined(r["input"], shapes)} for r in report.accuracy
    ]
    report.leaves = [_named(n) for n in report.leaves]
    report.dtype = dtype
    report.shapes = [tuple(s) if _is_shape(s) else s for s in shapes]
    if _is_pair(domain):
        report.domain = [tuple(domain)] * len(report.shapes)
    report.notes = [_named(n) for n in report.notes]
    return report


def complex_check(check: Callable, kw: dict):
    """``check(**kw)`` of a complex dtype: the real check of the parts, its report relabelled."""
    dtype = str(complex_name(kw["dtype"]))
    r = realify(kw["fn"], kw["reference"], kw["shapes"], kw["domain"], dtype)
    report = check(
        **{**kw, "fn": r.fn, "reference": r.reference, "shapes": r.shapes, "domain": r.domain, "dtype": r.dtype}
    )
    return relabel(report, kw["shapes"], kw["domain"], dtype)


# -- a custom rule of complex inputs, checked on its own (:mod:`._rules`) ----------------------
def cast_dtype(a, dtype: str):
    """``dtype`` for a real ``a``; its complex counterpart for a complex one."""
    if np.iscomplexobj(a):
        return "complex64" if dtype == "float32" else "complex128"
    return dtype


def delta_shape(a) -> tuple:
    """The shape of the real perturbation of input ``a``: (2, n) for a complex one (its real and
    imaginary parts), at most 2-D for a real one."""
    if np.iscomplexobj(a):
        return (2, int(np.size(a)))
    return a.shape if a.ndim <= 2 else (a.size,)


def perturbed(a, d):
    """``a`` moved by the real perturbation ``d`` of :func:`delta_shape`."""
    if np.iscomplexobj(a):
        return jnp.asarray(a, cast_dtype(a, str(d.dtype))) + jnp.reshape(jax.lax.complex(d[0], d[1]), a.shape)
    return jnp.asarray(a, d.dtype) + jnp.reshape(d, a.shape)


def real_view(o):
    """An output as the real check sees it: at most 2-D; a complex one as (2, n), its parts."""
    if jnp.iscomplexobj(o):
        return jnp.stack([jnp.real(o).ravel(), jnp.imag(o).ravel()])
    return o if o.ndim <= 2 else jnp.ravel(o)
