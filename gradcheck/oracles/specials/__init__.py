"""Special functions in a SymPy reference, evaluated independently of JAX.

The reference is lambdified three ways (see :mod:`gradcheck.oracles.reference`).  For special functions
SymPy's JAX printer emits names (``besseli``, ``Ei``, ``polylog``...) that no JAX module defines,
and mapping them to ``jax.scipy.special`` would compare the user's JAX function with the very
implementation it calls.  This package supplies, for every function in :data:`SUPPORTED`:

* :func:`numpy_namespace` - float64 values from ``scipy.special`` where SciPy has a routine for
  the argument range, else mpmath at 30 digits, element by element;
* :func:`jax_namespace` - the same values through ``jax.pure_callback`` (jit- and vmap-able),
  wrapped in ``jax.custom_jvp`` whose tangent is SymPy's own derivative of the function,
  lambdified with this namespace again (so derivatives of any order work, in any mode); in the
  arguments SymPy cannot differentiate (zeta's s, a Bessel order...) a 30-digit ``mpmath.diff``;
* :func:`mpmath_namespace` - the arbitrary-precision truth;
* :func:`prepare` - rewrites what the NumPy and JAX printers refuse to print (``lowergamma``,
  ``uppergamma``, ``fresnels``, ``fresnelc``) and SymPy's unevaluated derivatives of supported
  functions (``Derivative(zeta(s), s)``) into stand-in functions these namespaces define.  Call
  it on every expression before ``sp.lambdify``;
* :func:`check_supported` - refuses, before any work, a reference using anything else;
* :func:`numpy_modules`, :func:`mpmath_modules` - the ``modules`` lists of ``sp.lambdify`` for
  float64 NumPy and for mpmath.

One module per part: the table of functions (:mod:`._kernels`; a new special function is one
row there), the stand-ins (:mod:`._prepare`), the namespaces (:mod:`._namespaces`) and the
refusal (:mod:`._supported`).

Usage::

    exprs = [specials.prepare(e) for e in exprs]
    f = sp.lambdify(syms, exprs, modules=[specials.jax_namespace(), "jax"])
    g = sp.lambdify(syms, exprs, modules=[specials.numpy_namespace(), "numpy"])
    h = sp.lambdify(syms, exprs, modules=[specials.mpmath_namespace(), "mpmath"])
"""

from ._kernels import MP_DIGITS, SUPPORTED
from ._namespaces import jax_namespace, mpmath_modules, mpmath_namespace, numpy_modules, numpy_namespace
from ._prepare import STANDIN_FUNCTIONS, prepare
from ._supported import check_supported

__all__ = [
    "MP_DIGITS",
    "STANDIN_FUNCTIONS",
    "SUPPORTED",
    "check_supported",
    "jax_namespace",
    "mpmath_modules",
    "mpmath_namespace",
    "numpy_modules",
    "numpy_namespace",
    "prepare",
]
