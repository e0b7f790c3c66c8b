"""The check engine behind ``gradcheck.check``: a JAX function and its derivatives against a SymPy reference.

Private: ``gradcheck.check`` is the function, so this package must not share its name.  The
public names are re-exported by :mod:`gradcheck`.

A check is a short pipeline, one module per stage (the design is driven by throughput: check
the bulk of the points as one batched, jitted array program, and spend high precision only
where it is needed):

1. :mod:`._spec` - **validate** every argument into a frozen :class:`Spec` before any work;
   pytree arguments are flattened to leaves with printable names (``params['W']``).
2. :mod:`gradcheck.oracles.reference` - build the SymPy **reference**: values, kinks, and
   (``entries`` path, small inputs) its Jacobian and Hessian entry by entry.
3. :mod:`._sampling` - **sample** points: the domain's ends, zero, +-1, points on and beside the
   kinks, uniform, log-magnitude and moderate draws, and Hypothesis's edge-case draws.
4. :mod:`._program` - **run** ``fn``, ``jvp``/``vjp`` along random directions, and the
   Jacobians/Hessians (small inputs) or Hessian-vector products (large), as one jitted program.
5. :mod:`._engine` (what every path shares), :mod:`._entries`, :mod:`._probes`,
   :mod:`._numeric` (one engine per path) and :mod:`._judge` (the entry verdicts) - the float64
   **truth** (NumPy: the lambdified entries, or automatic differentiation of the reference's DAG,
   :mod:`gradcheck.oracles.tape`), the **comparison**, and the **referee** (long double, then
   mpmath at 50+ digits): only an mpmath-confirmed disagreement fails.
6. **shrink** each failure to a simple input (:meth:`Engine.shrink`), **diagnose** it
   (:mod:`._diagnose`) and **report** (:mod:`._report`).
7. :mod:`._pipeline` - :func:`check` wires the stages; :mod:`._assert` makes it an assertion.

The independent truths (special functions, the reference's NumPy and mpmath evaluations,
extrapolated differences, the NumPy tape) are the layer below, :mod:`gradcheck.oracles`.

Points on a kink of the reference (``Abs``, ``Max``, ``Min``, ``Heaviside``, ``sign``,
``Piecewise`` boundaries) are not failures for derivatives (nor for values when the reference
jumps there): the value chosen at a kink is a convention (JAX's relu'(0) = 0, SymPy's
Heaviside(0) = 1/2).  The report says how many points that excused.
"""

from ._args import load_args
from ._assert import CheckFailed, assert_check
from ._pipeline import check
from ._report import Failure, Report
from ._spec import TOLERANCES

__all__ = ["TOLERANCES", "CheckFailed", "Failure", "Report", "assert_check", "check", "load_args"]
