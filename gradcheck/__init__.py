"""gradcheck: verify the mathematics of backpropagation.

SymPy derives closed forms, JAX computes the same quantities by autodiff, and independent
oracles (NumPy/SciPy float64, mpmath at 50+ digits) referee.  The public API:

    check(fn, reference, shapes, domain=, order=, dtype=, ...) -> Report     (reference=None:
        the truth from fn in float64 and extrapolated differences; arguments may be pytrees)
    assert_check(...the same...) -> Report, or raise CheckFailed (an AssertionError)
    Report, Failure, TOLERANCES      what a check returns; the default tolerances per dtype
    float64()                        scoped float64 in JAX (a context manager)
    claim, Claim, Derivation, Step, Finding, Settings, ClaimResult, VERDICTS, evidence
                                     declaring a claim of the catalogue, and its types
    registry(), get(id), select(patterns), register(claim)     the registered claims

The layers behind these names are described in docs/architecture.md.
"""

from importlib.metadata import PackageNotFoundError, version as _version

from ._check import TOLERANCES, CheckFailed, Failure, Report, assert_check, check, load_args
from ._x64 import float64
from .catalogue import (
    VERDICTS,
    Claim,
    ClaimResult,
    Derivation,
    Finding,
    Settings,
    Step,
    claim,
    evidence,
    get,
    register,
    registry,
    select,
)

try:
    __version__ = _version("gradcheck")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "TOLERANCES",
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
    "__version__",
    "assert_check",
    "check",
    "claim",
    "evidence",
    "float64",
    "get",
    "load_args",
    "register",
    "registry",
    "select",
]
