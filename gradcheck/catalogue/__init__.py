"""The catalogue layer: claims, findings, the registry and the evidence helpers.

It sits above the check engine and below rendering; ``proofs/`` declares its claims with
:func:`claim` and :mod:`evidence`.  Nothing here renders or imports ``proofs`` except
:func:`load_catalogue`, the one entry point that loads it.
"""

from ..symbolic.derivation import Derivation as Derivation
from ..symbolic.derivation import Step as Step
from . import evidence as evidence
from ._claim import (
    VERDICTS as VERDICTS,
)
from ._claim import (
    Claim as Claim,
)
from ._claim import (
    ClaimResult as ClaimResult,
)
from ._claim import (
    Finding as Finding,
)
from ._claim import (
    Settings as Settings,
)
from ._load import load_catalogue as load_catalogue
from ._registry import claim as claim
from ._registry import get as get
from ._registry import register as register
from ._registry import registry as registry
from ._registry import select as select

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
