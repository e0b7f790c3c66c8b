"""The registry of claims, and :func:`claim`, the decorator that declares one.

A claim is declared where its derivation is written; its id comes from where it lives::

    # in proofs/sigmoid.py
    @claim(expected=("proved", "verified"), sources=("001_1861a09d8fa92c9f.txt",),
           title="Derivative of the logistic sigmoid",
           statement=r"$\\sigma'(z) = \\sigma(z)(1-\\sigma(z))$ for every real $z$")
    def derivative() -> Derivation: ...     # the derive half; `derivative` becomes the Claim

    @derivative.verifier
    def _(d, s): ...                        # the verify half

The id is ``topic.name``: ``topic`` is the first component of the module below its top-level
package (``proofs.sigmoid`` and ``proofs.chain._window`` give ``sigmoid`` and ``chain``; a
top-level module ``mypaper`` gives ``mypaper``), ``name`` the function's name.  Ids are unique
and stable (papers cite them): a second module that registers an id already taken stops with
an error naming both modules.

Which claims the registry holds is a question of catalogues (:mod:`._load`): :func:`registry`,
:func:`get` and :func:`select` take ``catalogues``, the modules to load (``None``: the
installed ones, see :func:`~._load.default_catalogues`), and return their claims, plus any
claim registered outside every catalogue (:func:`register` called by a script or a test).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from . import _load
from ._claim import Claim

__all__ = ["claim", "register", "registry", "get", "select", "topic_of"]

_REGISTRY: dict[str, Claim] = {}


def _reimported(old: Claim, new: Claim) -> bool:
    """Whether ``new`` comes from a fresh import of the module that declared ``old`` (a reload)."""
    if old.module != new.module or not old.module:
        return False
    mod = sys.modules.get(new.module)
    here = getattr(mod, "__dict__", None)
    old_globals = getattr(old.derive, "__globals__", None)
    return here is not None and getattr(new.derive, "__globals__", None) is here and old_globals is not here


def register(claim: Claim) -> Claim:
    """Add a claim to the registry; ids are unique and stable (papers cite them).

    A module imported again (``importlib.reload``, a test runner that re-imports) replaces its
    own claims; any other second registration of an id is an error naming both modules.
    """
    if not isinstance(claim, Claim):
        raise TypeError(f"register takes a Claim, got {type(claim).__name__}")
    old = _REGISTRY.get(claim.id)
    if old is not None and old is not claim and not _reimported(old, claim):
        raise ValueError(
            f"claim id {claim.id!r} is registered twice: by module {old.module or '?'} and by module "
            f"{claim.module or '?'} (ids are topic.name, the topic from the module's name: rename one)"
        )
    _REGISTRY[claim.id] = claim
    return claim


def topic_of(module: str) -> str:
    """The topic of a module's claims: its first component below the top-level package."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def claim(
    *,
    title: str,
    expected: Iterable[str],
    sources: Iterable[str] = (),
    seeds: Iterable[str] = (),
    statement: str = "",
    params: Mapping[str, Any] | None = None,
    verify: Callable | None = None,
    name: str | None = None,
) -> Callable[[Callable], Claim]:
    """Declare and register a claim whose derive half is the decorated function.

    ``sources`` cite where the statement comes from: free text (``"Vaswani et al. 2017, eq. (1)"``)
    or BibTeX keys (``"vaswani2017attention"``); ``seeds`` is their former name.  ``verify`` is
    given here when several claims share one verifier; otherwise decorate it with
    ``@<claim>.verifier``.  ``name`` overrides the function's name in the id.
    """
    for arg, given in (("sources", sources), ("seeds", seeds)):
        if isinstance(given, str):
            raise TypeError(f"{arg} must be a tuple of strings, got the string {given!r} (write ({given!r},))")

    def declare(derive: Callable) -> Claim:
        if not callable(derive):
            raise TypeError(f"@claim decorates the derive function, got {derive!r}")
        module = getattr(derive, "__module__", None) or ""
        cid = f"{topic_of(module)}.{name or derive.__name__}"
        return register(
            Claim(
                id=cid,
                title=title,
                sources=tuple(sources),
                seeds=tuple(seeds),
                expected=tuple(expected),
                derive=derive,
                verify=verify,
                statement=statement,
                params=dict(params or {}),
                module=module,
            )
        )

    return declare


def registry(catalogues: Sequence[str] | None = None) -> dict[str, Claim]:
    """Every claim of ``catalogues`` (module names; ``None``: the installed catalogues) by id.

    The catalogues are imported first (:func:`~._load.load`); claims registered outside every
    catalogue are included too.
    """
    active = _load.load(catalogues)
    known = _load.loaded()
    chosen = {i: c for i, c in _REGISTRY.items() if _load.within(c.module, active) or not _load.within(c.module, known)}
    missing = sorted(i for i, c in chosen.items() if c.verify is None)
    if missing:
        raise ValueError(f"claims without a verifier: {missing}")
    return dict(sorted(chosen.items()))


def get(claim_id: str, catalogues: Sequence[str] | None = None) -> Claim:
    reg = registry(catalogues)
    if claim_id not in reg:
        raise KeyError(f"no claim {claim_id!r}; `gradcheck list` shows the registered ids")
    return reg[claim_id]


def select(patterns: Iterable[str] = (), catalogues: Sequence[str] | None = None) -> list[Claim]:
    """Claims whose id equals a pattern or starts with ``pattern + '.'`` (a topic).

    An empty selection means every claim of ``catalogues``.  A pattern that matches nothing is
    an error.
    """
    reg = registry(catalogues)
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
