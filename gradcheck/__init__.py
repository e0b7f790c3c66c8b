"""gradcheck: verify the mathematics of backpropagation.

SymPy derives closed forms, JAX computes the same quantities by autodiff, and high-precision
mpmath evaluation referees.  The public API fits on one screen:

    gradcheck.check(fn, reference, shapes, ...)   -> Report      check a JAX function (arguments
                                                                 may be pytrees; reference=None:
                                                                 the truth from fn in float64)
    gradcheck.assert_check(...same...)            -> Report      check, or raise CheckFailed
    gradcheck.float64()                           -> context     scoped float64 in JAX
    gradcheck.TOLERANCES                                         default rtol/atol per dtype
    gradcheck.Claim, Derivation, Step, Finding, Settings         the catalogue's types
    gradcheck.registry(), get(id), select(patterns)              the registered claims
"""

from importlib.metadata import PackageNotFoundError, version as _version

from .catalogue import (
    VERDICTS as VERDICTS,
    Claim as Claim,
    ClaimResult as ClaimResult,
    Derivation as Derivation,
    Finding as Finding,
    Settings as Settings,
    Step as Step,
    get as get,
    register as register,
    registry as registry,
    select as select,
)
from ._check import (
    TOLERANCES as TOLERANCES,
    CheckFailed as CheckFailed,
    Failure as Failure,
    Report as Report,
    assert_check as assert_check,
    check as check,
)
from ._x64 import float64 as float64

try:
    __version__ = _version("gradcheck")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "VERDICTS",
    "CheckFailed",
    "Claim",
    "ClaimResult",
    "Derivation",
    "Failure",
    "Finding",
    "Report",
    "Settings",
    "Step",
    "TOLERANCES",
    "assert_check",
    "check",
    "float64",
    "get",
    "register",
    "registry",
    "select",
    "__version__",
]
