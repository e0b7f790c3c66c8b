"""The catalogue layer: claims, findings, the registry and the evidence helpers.

It sits above the check engine and below rendering; ``proofs/`` declares its claims with
:func:`claim` and :mod:`evidence`.  Nothing here renders or imports ``proofs`` except
:func:`load_catalogue`, the one entry point that loads it.
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
from ._load import load_catalogue as load_catalogue
from ._registry import claim as claim, get as get, register as register, registry as registry, select as select

__all__ = [
    "VERDICTS",
    "Claim",
    "ClaimResult",
    "Derivation",
    "Finding",
    "Settings",
    "Step",
    "claim",
    "evidence",
    "get",
    "load_catalogue",
    "register",
    "registry",
    "select",
]
