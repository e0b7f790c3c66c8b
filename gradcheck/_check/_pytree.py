"""Pytree arguments: ``shapes`` and ``domain`` as the user gave them, flattened to one shape and
one (lo, hi) per leaf, each checked with an error that names where it was given."""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np

__all__ = ["flatten_shapes", "leaf_domains"]


def _is_shape(s) -> bool:
    return (
        isinstance(s, tuple)
        and not hasattr(s, "_fields")
        and all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in s)
    )


def _leaf_shape(s, where: str) -> tuple[int, ...]:
    if isinstance(s, (int, np.integer)) and not isinstance(s, bool):
        s = (int(s),)
    if isinstance(s, list) and all(isinstance(n, (int, np.integer)) for n in s) and s:
        s = tuple(s)
    if not _is_shape(s) or len(s) > 2 or not all(n >= 1 for n in s):
        raise ValueError(
            f"{where} must be () for a scalar, (n,) for a vector or (m, n) for a matrix with "
            f"positive sizes (or a dict, list, tuple or NamedTuple of such shapes), got {s!r}"
        )
    return tuple(int(n) for n in s)


def flatten_shapes(shapes) -> tuple[list[tuple[Any, list[tuple[Any, tuple[int, ...]]]]], bool]:
    """(per argument: (treedef, [(path, shape)]), and whether any argument is a pytree)."""
    if _is_shape(shapes) and shapes and all(isinstance(s, (int, np.integer)) for s in shapes):
        raise ValueError(f"shapes must be a list with one shape per argument, e.g. [{shapes!r}], got {shapes!r}")
    if not isinstance(shapes, (list, tuple)) or (isinstance(shapes, tuple) and _is_shape(shapes)) or not shapes:
        raise ValueError(f"shapes must be a non-empty list of shapes, one per argument, e.g. [(5,)], got {shapes!r}")
    per_arg: list[tuple[Any, list[tuple[Any, tuple[int, ...]]]]] = []
    for i, s in enumerate(shapes):
        if (
            _is_shape(s)
            or isinstance(s, (int, np.integer))
            or (isinstance(s, list) and s and all(isinstance(n, (int, np.integer)) for n in s))
        ):
            per_arg.append((None, [((), _leaf_shape(s, f"shapes[{i}]"))]))
            continue
        if not isinstance(s, (dict, list, tuple)):
            raise ValueError(f"shapes[{i}] must be a shape tuple or a pytree of shape tuples, got {s!r}")
        leaves, treedef = jax.tree_util.tree_flatten_with_path(s, is_leaf=_is_shape)
        if not leaves:
            raise ValueError(f"shapes[{i}] is an empty pytree: give at least one array shape, got {s!r}")
        per_arg.append(
            (treedef, [(path, _leaf_shape(leaf, f"shapes[{i}]{jax.tree_util.keystr(path)}")) for path, leaf in leaves])
        )
    return per_arg, any(t is not None for t, _ in per_arg)


def _one_domain(d, where, dtype):
    if not isinstance(d, (tuple, list)) or len(d) != 2:
        raise ValueError(f"{where} must be a pair (lo, hi), got {d!r}")
    try:
        lo, hi = float(d[0]), float(d[1])
    except (TypeError, ValueError):
        raise ValueError(f"{where} must hold two real numbers, got {d!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{where} must be finite, got ({lo}, {hi})")
    if lo >= hi:
        raise ValueError(f"{where} must have lo < hi, got lo={lo} >= hi={hi}")
    big = float(np.finfo(dtype).max)
    if abs(lo) > big or abs(hi) > big:
        raise ValueError(f"{where}=({lo}, {hi}) exceeds the largest {dtype} ({big:.4g})")
    return lo, hi


def _is_pair(d) -> bool:
    return (
        isinstance(d, (tuple, list))
        and len(d) == 2
        and all(isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool) for v in d)
    )


def leaf_domains(domain, per_arg, dtype):
    """One (lo, hi) per leaf; ``domain`` is one pair, one per argument, or per leaf (a pytree of
    pairs shaped like that argument's shapes)."""
    n_args = len(per_arg)
    if _is_pair(domain):
        d = _one_domain(domain, "domain", dtype)
        return [d for _, leaves in per_arg for _ in leaves]
    if not isinstance(domain, (tuple, list)) or len(domain) != n_args:
        raise ValueError(f"domain must be (lo, hi) or a list of (lo, hi), one per argument ({n_args}), got {domain!r}")
    out = []
    for i, (d, (treedef, leaves)) in enumerate(zip(domain, per_arg)):
        if _is_pair(d):
            pair = _one_domain(d, f"domain[{i}]", dtype)
            out += [pair] * len(leaves)
            continue
        if treedef is None:
            raise ValueError(f"domain[{i}] must be a pair (lo, hi), got {d!r}")
        try:
            sub = jax.tree_util.tree_flatten_with_path(d, is_leaf=_is_pair)[0]
        except Exception:
            sub = []
        paths = [jax.tree_util.keystr(p) for p, _ in leaves]
        got = {jax.tree_util.keystr(p): v for p, v in sub}
        if set(got) != set(paths):
            raise ValueError(
                f"domain[{i}] must be (lo, hi) or a pytree of (lo, hi) pairs shaped like shapes[{i}] "
                f"(leaves {paths}), got {d!r}"
            )
        for p in paths:
            out.append(_one_domain(got[p], f"domain[{i}]{p}", dtype))
    return out
