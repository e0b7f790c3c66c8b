"""The catalogue layer: claims, findings, the registry and the evidence helpers.

It sits above the check engine and below rendering.  A catalogue is any module or package
that declares claims with :func:`claim` and :mod:`evidence` (``proofs/`` is one); :mod:`._load`
finds catalogues (``--catalogue``, ``[tool.gradcheck]``, the ``gradcheck.catalogues`` entry
points) and imports them by the names it is given.  Nothing here renders, and nothing here
imports ``proofs`` by name.
"""

from ..symbolic.derivation import Derivation as Derivation, Step as Step
from . import evidence as evidence
from ._claim import (
    VERDICTS as VERDICTS,
    Claim as Claim,
    ClaimResult as ClaimResult,
    Finding as Finding,
    Settings as Settings,
)
from ._load import (
    ENTRY_POINT_GROUP as ENTRY_POINT_GROUP,
    CatalogueError as CatalogueError,
    default_catalogues as default_catalogues,
    load as load,
    load_catalogue as load_catalogue,
    resolve as resolve,
)
from ._registry import claim as claim, get as get, register as register, registry as registry, select as select

__all__ = [
    "ENTRY_POINT_GROUP",
    "VERDICTS",
    "CatalogueError",
    "Claim",
    "ClaimResult",
    "Derivation",
    "Finding",
    "Settings",
    "Step",
    "claim",
    "evidence",
    "default_catalogues",
    "get",
    "load",
    "load_catalogue",
    "register",
    "registry",
    "resolve",
    "select",
]
