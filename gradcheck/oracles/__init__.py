"""Oracles: the independent truths that the check engine compares ``fn`` against.

An oracle computes what ``fn`` (a JAX function) and its derivatives should be, by a route that
shares no code with ``fn``: not JAX's autodiff, not ``jax.scipy.special``, so that a wrong rule in
JAX cannot agree with itself.  Each states how far its answer can be trusted (a precision, an
error bound, or a status per entry) so that the engine can tell a wrong rule from rounding.

* :mod:`.specials` - special functions in float64 (SciPy, or mpmath where SciPy has no routine),
  in mpmath, and as JAX callbacks; what a SymPy reference may use, and the refusal of the rest.
* :mod:`.reference` - a user's SymPy reference, validated, differentiated (Jacobian, Hessian),
  its kinks found, and evaluated as a batched NumPy float64 program and in NumPy long double.
* :mod:`.mpmath_truth` - the same quantities in mpmath at 50 digits and more, the precision
  doubled until two evaluations agree; the condition terms that scale a derivative's tolerance.
* :mod:`.tape` - automatic differentiation of a reference's SymPy DAG in NumPy float64 (JVP,
  VJP, Hessian-vector products), for inputs too large to expand the Jacobian entry by entry.
* :mod:`.numerical` - Richardson-extrapolated central differences with Ridders' error bound,
  the truth when there is no closed form (``reference=None``).

A new oracle is a module here: it may import the leaves (``gradcheck._x64``, ``sharding``...),
:mod:`gradcheck.symbolic` and the other oracles, never the engine (:mod:`gradcheck._check`) nor
anything above it; the engine's path that uses it (one engine per path in ``gradcheck/_check/``)
imports it.  A new special function is one row of the table in :mod:`.specials._kernels`.
"""
