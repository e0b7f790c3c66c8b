"""Stage 7 of a check: :func:`check` wires the stages together (see :mod:`gradcheck._check`).

:func:`check` validates, builds the reference, compiles ``fn``'s program, samples the points,
runs the engine of the chosen path over them, and :func:`_assemble` turns the confirmed
disagreements into one shrunk, diagnosed :class:`Failure` per (kind, argument).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import hypothesis
import numpy as np

from .._x64 import dtype_context
from ..oracles._memory import steady_memory
from ..oracles.reference import build_reference, expansion_cost
from ._accuracy import ACCURACY_ULPS, as_failures, check_threshold
from ._args import given_args
from ._batching import check_batching, finish, mode_failure
from ._complex import complex_check, complex_name
from ._diagnose import _RULE_CHECK, CATEGORIES, diagnose
from ._engine import Seen
from ._entries import EntriesEngine
from ._modes import MODE_ORDER, kind_of, mode_kind
from ._numeric import NoReference, NumericEngine
from ._order import complexities
from ._probes import ProbesEngine
from ._program import program, unbatched
from ._report import Failure, Report, kinks_line, report_notes, tally_fields, truth_line
from ._sampling import flat_domains, hypothesis_points, range_points, sample
from ._spec import VALIDATED, choose_path, validate

__all__ = ["check", "choose_path"]

_KINDS = ("value", "gradient", "second-derivative", "non-finite")


_SHAPES = ((),)
_DOMAIN = (-1000.0, 1000.0)


@steady_memory()
def check(
    fn: Callable,
    reference: Callable | None,
    shapes: Sequence = _SHAPES,
    domain=_DOMAIN,
    order: int = 1,
    dtype=None,
    max_examples: int | None = None,
    seed: int | None = None,
    *,
    rtol: float | None = None,
    atol: float | None = None,
    hypothesis_examples: int | None = None,
    path: str = "auto",
    strict: bool = False,
    args: Sequence | None = None,
    radius: float | None = None,
    accuracy: float | None = None,
) -> Report:
    """Check ``fn``, its first (and with ``order=2`` second) derivatives against ``reference``.

    Args:
      fn: a JAX function of one or more arguments, each an array or a pytree of arrays (dict,
        list, tuple, NamedTuple); it returns an array (up to 2-D) or a pytree of arrays.
      reference: ``None`` for a check with no closed form (the truth is then ``fn`` in float64
        and extrapolated central differences with an error bound; see :mod:`._numeric`), or a
        callable that builds the SymPy closed form from SymPy inputs of the same structure: an
        ``sp.Symbol`` for shape ``()``, an n x 1 ``sp.Matrix`` for ``(n,)``, an m x n Matrix
        for ``(m, n)``, in the same pytree as the argument; returns a SymPy expression or a
        Matrix shaped like ``fn``'s output (or the same pytree of them).
      shapes: one entry per argument: a shape, or a pytree of shapes (``{"W": (3, 4), "b": (3,)}``).
      domain: one ``(lo, hi)`` for all inputs, or a list with one per argument, each a pair or
        a pytree of pairs shaped like that argument.
      order: 1 for values and first derivatives, 2 for second derivatives as well.
      dtype: ``"float64"`` (the default; enabled for the duration of the call only),
        ``"float32"``, or ``"complex128"`` / ``"complex64"`` (fn's arguments complex, each part
        drawn from ``domain``; checked as the real function of the parts, :mod:`._complex`);
        with ``args=``, the args' own floating-point dtype.
      max_examples: points in the batched sweep (default: the profile's, 200); Hypothesis draws
        ``hypothesis_examples`` more edge cases (default: the profile's, at most max_examples).
      seed: every random draw derives from it (default: the profile's seed, 0): a failure replays.
      rtol, atol: override the :data:`TOLERANCES` entry of ``dtype``.
      path: ``"entries"`` (the reference's Jacobian/Hessian expanded in SymPy and compared entry
        by entry), ``"probes"`` (its derivatives along random directions, O(n) per point), or
        ``"auto"``: entries while at most 512 derivatives and 16 inputs and the expansion is
        cheap (the entries times a sampled entry's SymPy operations at most 50,000), else probes;
        the report's ``truth:`` line says why.
      strict: count precision artefacts of the dtype (the same function right in float64 and the
        error within the dtype's resolution, or under jit only) as failures; by default they are
        ``report.accuracy_notes``.  Every failure carries a computed ``category`` and ``diagnosis``.

      args: instead of ``shapes`` and ``domain``, fn's own argument values, as ``check_grads``
        takes them: any pytrees (an Equinox module, a Flax params dict, arrays), with
        ``reference=None``.  Floating-point array leaves are differentiated; every other leaf
        (integer arrays, PRNG keys, functions, static fields) is held fixed, as
        ``equinox.filter_grad`` does.  The points are the given values themselves and
        perturbations of every entry up to ``radius`` times its leaf's root mean square
        (:mod:`._args`); ``report.at_values`` says which leaves were differentiated.
      radius: the perturbation radius of ``args=`` relative to each leaf's scale (default 0.1).
      accuracy: a threshold in ulps of the dtype.  Every check measures each quantity's largest
        error in ulps against the truth (``report.accuracy``; :mod:`._accuracy`); a quantity
        beyond the threshold (default 2**20) is printed as inaccurate even where the tolerance
        passes it (a derivative of 0 where the truth is 2e-13), and is a failure when
        ``accuracy`` is given or ``strict=True``.

    Returns:
      a :class:`Report`; ``report.ok`` is True when nothing failed.
    """
    if args is None and complex_name(dtype):  # the real check of its parts (:mod:`._complex`)
        return complex_check(check, dict(locals()))
    t_start = time.perf_counter()
    threshold = check_threshold(accuracy)
    at = given_args(fn, reference, args, radius, dtype, shapes is not _SHAPES or domain is not _DOMAIN)
    if at is not None:
        fn, shapes, domain, dtype = at.fn, at.shapes, at.domain, at.dtype
    given = locals()
    spec = validate(**{name: given[name] for name in VALIDATED})
    if at is not None:
        spec = at.named(spec)
    dtype = spec.dtype
    n_in = sum(int(np.prod(s)) if s else 1 for s in spec.leaf_shapes)
    n_out = len(spec.out_names)
    chosen, why = choose_path(spec.path, n_in, n_out, spec.order) if reference is not None else ("numerical", "")

    t0 = time.perf_counter()
    ref, chosen, why = _reference(spec, reference, chosen, why, n_in, n_out)
    t_sym = time.perf_counter() - t0

    # ---- fn's program (compiled once) and the engine of the chosen path ----
    with dtype_context(dtype):
        prog = program(
            spec.flat_fn,
            spec.leaf_shapes,
            ref.arg_of,
            spec.order,
            dtype,
            n_out,
            "entries" if chosen == "entries" else "probes",
            key=(spec.fn, repr(spec.shapes)),
        )
    nested = hypothesis.control.currently_in_test_context()
    X, n_regular, n_hyp = _points(spec, ref, at is not None, nested)
    engine = {"entries": EntriesEngine, "probes": ProbesEngine, "numerical": NumericEngine}[chosen]
    eng = engine(spec, ref, prog, points=X.shape[0])

    failures_raw: dict[tuple, list[Seen]] = {}  # (kind, mode, leaf) -> the failing points
    t1 = time.perf_counter()
    T, C, S = eng.directions(X.shape[0])
    with dtype_context(dtype), unbatched():  # vmap checked first; where wrong, the rest unbatched
        eng, prog, batching = check_batching(eng, spec, X, T, C, S, n_regular)
        rows64: dict[int, np.ndarray] = {}  # one copy of a failing row, however many entries fail there
        for f in eng.evaluate(X, T, C, S):
            r = f.row
            leaf, _ = eng.describe(f.mode, f.entry)
            if r not in rows64:
                rows64[r] = X[r].astype(np.float64)
            failures_raw.setdefault((kind_of(f.mode, f.got, f.expected), f.mode, leaf), []).append(
                Seen(rows64[r], f.entry, f.expected, f.got, f.error, (T[r], C[r], S[r]), r >= n_regular, r)
            )
        t_sweep = time.perf_counter() - t1
        t3 = time.perf_counter()
        failures, notes, accuracy_notes, range_limits, spilled = _assemble(eng, spec, prog, failures_raw, bool(strict))
        failures = finish(batching, failures, prog, bool(strict))
        t_shrink = time.perf_counter() - t3
    measured = list(eng.accuracy_rows or [])  # measured where fn ran: at the values, with args=
    inaccurate = as_failures(measured, threshold or ACCURACY_ULPS, spec, prog) if strict or threshold else []
    if at is not None:
        failures, accuracy_notes, range_limits, spilled = at.at_values_of(
            spec, failures, accuracy_notes, range_limits, spilled, valued=inaccurate
        )
    else:
        failures += inaccurate
    kinks = kinks_line(ref, reference is None, eng.tally.kink_points)
    truth = eng.truth_note() if chosen == "numerical" else truth_line(chosen, n_in, n_out, spec.order, why)
    return Report(
        failures=failures,
        fn_name=spec.fn_name,
        shapes=list(spec.leaf_shapes),
        domain=list(spec.leaf_domains),
        order=spec.order,
        dtype=dtype,
        rtol=spec.rtol,
        atol=spec.atol,
        seed=spec.seed,
        max_examples=spec.max_examples,
        hypothesis_examples=n_hyp,
        points_checked=int(X.shape[0]),
        modes=dict(prog.modes),
        kinks=kinks,
        seconds={"symbolic": t_sym, "sweep": t_sweep, "shrink": t_shrink, "total": time.perf_counter() - t_start},
        devices=eng.devices,
        notes=report_notes(notes, dtype, at is not None, spec.hypothesis_examples if nested else 0),
        path=chosen,
        truth=truth,
        at_values=at.describe() if at is not None else "",
        radius=at.radius if at is not None else None,
        leaves=list(spec.leaf_names) if spec.pytree else [],
        accuracy_notes=accuracy_notes,
        range_limits=range_limits,
        undefined_spill=spilled,
        strict=bool(strict),
        accuracy=measured,
        accuracy_ulps=threshold or ACCURACY_ULPS,
        accuracy_failing=bool(strict) or threshold is not None,
        **tally_fields(eng.tally, eng.refereed_cap),
    )


def _reference(spec, reference, chosen: str, why: str, n_in: int, n_out: int):
    """(the reference: its values and kinks, and on the entries path its derivatives; the path,
    and why): where ``path="auto"`` chose entries, the reference's values first, to see whether
    its entries are cheap to expand.  A reference whose output is not fn's shape is refused."""
    if spec.flat_reference is None:
        return NoReference(spec.leaf_shapes, n_out), chosen, why
    if chosen == "entries" and spec.path == "auto":
        key = (spec.reference, repr(spec.shapes))
        values = build_reference(spec.flat_reference, spec.leaf_shapes, spec.order, False, key)
        cost = expansion_cost(values.outputs, values.inputs, spec.order)
        chosen, why = choose_path("auto", n_in, n_out, spec.order, cost)
    ref = build_reference(
        spec.flat_reference,
        spec.leaf_shapes,
        spec.order,
        derivatives=chosen == "entries",
        cache_key=(spec.reference, repr(spec.shapes)),
    )
    ref_shape, fn_shape = ref.out_shape, spec.out_shape
    compatible = (
        ref_shape == fn_shape
        or (len(fn_shape) == 1 and ref_shape in ((fn_shape[0], 1), (1, fn_shape[0])))
        or (fn_shape in ((), (1,), (1, 1)) and ref_shape in ((), (1, 1)))
    )
    if not compatible or ref.n_out != n_out:
        shown = "a scalar" if ref_shape == () else f"a {ref_shape[0]} x {ref_shape[1]} Matrix"
        if not spec.out_pytree:
            what = f"fn's output {fn_shape}"
        else:
            what = (
                f"fn's output: {n_out} entries ({', '.join(spec.out_names[:4])}"
                f"{', ...' if n_out > 4 else ''}), in the same structure"
            )
        raise ValueError(f"reference must return the shape of {what}, but it returned {shown}")
    return ref, chosen, why


def _points(spec, ref, at_values: bool, nested: bool):
    """(X, the rows of the domain's own points, Hypothesis's examples): the random sweep and
    Hypothesis's edge cases in one batch, then the range's edges.  Inside the caller's own
    Hypothesis test (``nested``) a nested @given is refused (HealthCheck.nested_given): the
    outer test already draws inputs, so the sweep takes Hypothesis's share of points instead.
    With ``args=`` (``at_values``) the user's own values come first and there are no range
    points (the perturbations are small)."""
    dtype = spec.dtype
    n_hyp = 0 if nested else spec.hypothesis_examples
    rng = np.random.default_rng([spec.seed, 3])
    domains = flat_domains(spec, ref)
    X = sample(ref, domains, spec.max_examples + (spec.hypothesis_examples if nested else 0), dtype, rng)
    if n_hyp:
        H = hypothesis_points(spec.leaf_shapes, spec.leaf_domains, dtype, n_hyp, spec.seed)
        n_hyp = H.shape[0]
        X = np.vstack([X, H.astype(dtype)])
    if at_values:
        X = np.vstack([np.zeros((1, X.shape[1]), X.dtype), X])
    n_regular = X.shape[0]
    if not at_values:
        X = np.vstack([X, range_points(domains, dtype, np.random.default_rng([spec.seed, 31]))])
    return X, n_regular, n_hyp


def _assemble(eng, spec, prog, failures_raw, strict):
    """One failure per (kind, leaf), re-checked alone, shrunk and diagnosed; the modes that showed
    it listed; precision artefacts set apart as accuracy notes unless ``strict``."""
    dtype = spec.dtype
    failures = []
    accuracy_notes = []
    range_limits = []
    spilled = []  # non-finite entries beside an undefined one (see _diagnose._undefined_beside)
    notes: list[str] = []
    # one failure per (kind, argument): the modes that showed it are listed together
    groups: dict[tuple, dict[str, list]] = {}
    for (kind, mode, arg), items in failures_raw.items():
        groups.setdefault((kind, arg), {})[mode] = items
    mode_rank = {m: i for i, m in enumerate(MODE_ORDER)}  # the mode that names an input entry first
    # the shrinker's order of each failing row of each group's first mode, measured once
    rank = lambda m: mode_rank.get(m, 99)
    first = {it.row: it.x for by_mode in groups.values() for it in by_mode[min(by_mode, key=rank)]}
    row_cx = dict(zip(first, complexities(list(first.values()))))
    for (kind, arg), by_mode in sorted(
        groups.items(), key=lambda kv: (_KINDS.index(kv[0][0]), kv[0][1] if kv[0][1] is not None else -1)
    ):
        modes = sorted(by_mode, key=rank)
        mode = modes[0]
        items = by_mode[mode]
        points = len({it.row for its in by_mode.values() for it in its})
        # a failure must reproduce with the point alone: XLA has been seen to miscompile
        # a large vmapped batch (float32 rev-over-rev Hessian of log_softmax at a tie)
        alone = None
        for it in sorted(items, key=lambda it: row_cx[it.row])[:4]:
            d = [v[None] for v in it.directions]  # the directions this point had in the sweep
            for f in eng.recheck(it.x[None].astype(dtype), *d, alone=True, mode=mode):
                if (
                    f.mode == mode
                    and kind_of(mode, f.got, f.expected) == kind
                    and eng.describe(mode, f.entry)[0] == arg
                ):
                    alone = it._replace(entry=f.entry, expected=f.expected, got=f.got, error=f.error)
                    break
            if alone:
                break
        if alone is None:
            notes.append(
                f"{points} point(s) disagreed in {', '.join(modes)} only inside the large batch and "
                f"not alone (an XLA batching issue, not fn's rule); not counted as a failure"
            )
            continue
        x, e, exp, gv, err, dirs = alone.x, alone.entry, alone.expected, alone.got, alone.error, alone.directions
        # a custom rule checked on its own only needs its verdict: no shrinking, no diagnosis
        quick = _RULE_CHECK.get()
        sx, sf = (x, None) if quick else eng.shrink(x, mode, kind, arg, dirs)
        shrunk = not quick  # the simplest failing input found: the shrinker ran from the simplest point
        if sf is not None:
            x = sx
            e, exp, gv, err = sf.entry, sf.expected, sf.got, sf.error
        leaf, entry = eng.describe(mode, e)
        category, why = ("wrong rule", "") if quick else diagnose(eng, spec, prog, modes, mode, e, x, dirs, exp, gv)
        if strict:
            target = failures
        elif category == "precision":
            target = accuracy_notes
        elif category == "undefined entry":
            target = spilled
        elif category == "range limit" and all(it.range_point for its in by_mode.values() for it in its):
            # only at the added range points (subnormals, sqrt(max)...): listed apart; where the
            # user's own domain reaches the range limit (a domain of +-1e300) it is a failure
            target = range_limits
        else:
            target = failures
        target.append(
            Failure(
                category=category,
                diagnosis=why,
                kind=kind,
                argument=spec.leaf_arg[leaf] if leaf is not None else None,
                argument_name=spec.leaf_names[leaf] if leaf is not None else None,
                mode=", ".join(modes),
                entry=entry,
                input=tuple(np.asarray(v, dtype=dtype) for v in prog.unflatten(x)),
                expected=exp,
                got=gv,
                error=err,
                points=points,
                shrunk=shrunk,
                input_names=tuple(spec.leaf_names) if spec.pytree else (),
                **(
                    {"confirmed_by": "the numerical truth (beyond the tolerance plus 10x its error bound)"}
                    if eng.path == "numerical"
                    else {}
                ),
            )
        )
    for mode, msg in prog.broken.items():
        kind = mode_kind(mode)
        failures.append(
            mode_failure(
                kind,
                mode,
                f"{mode}: JAX raised while differentiating fn: {msg}",
                "JAX itself raised while differentiating fn in this mode: a finding about fn, not a crash of the check",
            )
        )
    failures.sort(key=lambda f: CATEGORIES.index(f.category) if f.category in CATEGORIES else 0)
    return failures, notes, accuracy_notes, range_limits, spilled
