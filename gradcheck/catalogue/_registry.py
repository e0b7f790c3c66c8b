"""The registry of claims, and :func:`claim`, the decorator that declares one.

A claim is declared where its derivation is written; its id comes from where it lives::

    # in proofs/sigmoid.py
    @claim(expected=("proved", "verified"), seeds=("001",), title="Derivative of the logistic sigmoid",
           statement=r"$\\sigma'(z) = \\sigma(z)(1-\\sigma(z))$ for every real $z$")
    def derivative() -> Derivation: ...     # the derive half; `derivative` becomes the Claim

    @derivative.verifier
    def _(d, s): ...                        # the verify half

The id is ``topic.name``: ``topic`` is the first component of the module below its top-level
package (``proofs.sigmoid`` and ``proofs.chain._window`` give ``sigmoid`` and ``chain``), ``name``
the function's name.  Ids are unique and stable: papers cite them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from . import _load
from ._claim import Claim

__all__ = ["claim", "register", "registry", "get", "select", "topic_of"]

_REGISTRY: dict[str, Claim] = {}


def register(claim: Claim) -> Claim:
    """Add a claim to the registry; ids are unique and stable (papers cite them)."""
    if not isinstance(claim, Claim):
        raise TypeError(f"register takes a Claim, got {type(claim).__name__}")
    if claim.id in _REGISTRY and _REGISTRY[claim.id] is not claim:
        raise ValueError(f"claim id {claim.id!r} is registered twice")
    _REGISTRY[claim.id] = claim
    return claim


def topic_of(module: str) -> str:
    """The topic of a module's claims: its first component below the top-level package."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def claim(
    *,
    title: str,
    seeds: Iterable[str],
    expected: Iterable[str],
    statement: str = "",
    params: Mapping[str, Any] | None = None,
    verify: Callable | None = None,
    name: str | None = None,
) -> Callable[[Callable], Claim]:
    """Declare and register a claim whose derive half is the decorated function.

    ``verify`` is given here when several claims share one verifier; otherwise decorate it with
    ``@<claim>.verifier``.  ``name`` overrides the function's name in the id.
    """

    def declare(derive: Callable) -> Claim:
        if not callable(derive):
            raise TypeError(f"@claim decorates the derive function, got {derive!r}")
        cid = f"{topic_of(derive.__module__)}.{name or derive.__name__}"
        return register(
            Claim(
                id=cid,
                title=title,
                seeds=tuple(seeds),
                expected=tuple(expected),
                derive=derive,
                verify=verify,
                statement=statement,
                params=dict(params or {}),
            )
        )

    return declare


def registry() -> dict[str, Claim]:
    """Every registered claim by id, the catalogue loaded first."""
    _load.load_catalogue()
    missing = sorted(i for i, c in _REGISTRY.items() if c.verify is None)
    if missing:
        raise ValueError(f"claims without a verifier: {missing}")
    return dict(sorted(_REGISTRY.items()))


def get(claim_id: str) -> Claim:
    reg = registry()
    if claim_id not in reg:
        raise KeyError(f"no claim {claim_id!r}; `gradcheck list` shows the registered ids")
    return reg[claim_id]


def select(patterns: Iterable[str] = ()) -> list[Claim]:
    """Claims whose id equals a pattern or starts with ``pattern + '.'`` (a topic).

    An empty selection means every claim.  A pattern that matches nothing is an error.
    """
    reg = registry()
    patterns = list(patterns)
    if not patterns:
        return list(reg.values())
    out: dict[str, Claim] = {}
    for p in patterns:
        hits = [c for i, c in reg.items() if i == p or i.startswith(p.rstrip(".") + ".")]
        if not hits:
            raise KeyError(f"no claim or topic {p!r}; topics: {sorted({c.topic for c in reg.values()})}")
        out.update((c.id, c) for c in hits)
    return list(out.values())
