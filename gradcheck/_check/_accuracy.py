"""What a check measured of ``fn``'s accuracy, in ulps of the checked dtype, on every path.

The tolerance judges ``|got - truth| <= atol + rtol |truth| + ...``: a derivative of exactly 0
where the truth is 2e-13 passes it (below ``atol``), yet no digit of it is right: what makes a
deep network's gradient vanish earlier than it should, told apart from rounding only by the
*relative* accuracy.  So each engine measures, per quantity, the largest error in ulps of the
dtype at the truth (:func:`worst`); beyond :data:`ACCURACY_ULPS` (2^20 ulps: float32 keeps under
4 correct bits, float64 under 33) it is an *accuracy finding*: printed in the report, a failure
under ``strict=True`` or ``accuracy=ULPS``.  The truth of the measurement, per path:

* entries: the float64 truth finds the worst point, the mpmath truth measures it;
* probes: the float64 truth of the reference's tape finds each mode's worst point; beyond the
  threshold it is measured again by mpmath (cancellation in float64 makes no finding);
* ``reference=None``: float32 only, against ``fn`` itself in float64 (its values, JVP and VJP
  along the same directions); float64 has no finer truth and measures nothing.

A correct function whose small results are right to the dtype's relative precision prints
nothing.  Nor does a result small by cancellation in the mathematics itself (a layer norm's
Jacobian entry where it crosses zero, a JVP whose terms cancel): a correct evaluation is off by
the rounding of the terms there, so a finding must also exceed :data:`GUARD` times the move that
rounding the inputs (the point, and the tangent or cotangent) by one ulp makes in the truth
(``row``'s ``move``).  ``tanh'(-15.3)`` in float32 (truth 2.2e-13, got 0) is 1.65e7 ulps off and
5.5e5 times that move: a finding; a zero crossing is a few times its move: none.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from ..oracles.mpmath_truth import Status, status_of
from ._failure import Failure
from ._judge import tolerance
from ._truth64 import own64
from ._ulps import measurable, subnormal_rows, ulps, worst

__all__ = [
    "ACCURACY_ULPS",
    "GUARD",
    "check_threshold",
    "ulps",
    "measurable",
    "subnormal_rows",
    "worst",
    "row",
    "beyond",
    "as_failures",
    "lines",
]

#: the default threshold of an accuracy finding, in ulps of the checked dtype
ACCURACY_ULPS = 2.0**20
#: a finding's error must also exceed this many times the move of the truth under input rounding
GUARD = 2.0**10
_SHOWN = 8  # findings printed in the report; all of them are in ``report.accuracy``
_DRAWS = 8  # perturbed copies of a point whose move under input rounding is measured


def check_threshold(accuracy: Any) -> float | None:
    """``accuracy=`` as given to ``check``: None, or a number of ulps >= 1."""
    if accuracy is None:
        return None
    ok = isinstance(accuracy, (int, float, np.integer, np.floating)) and not isinstance(accuracy, bool)
    if not ok or not math.isfinite(float(accuracy)) or float(accuracy) < 1:
        raise ValueError(
            f"accuracy must be a threshold in ulps of the dtype, a finite number >= 1 (e.g. 2**20), got {accuracy!r}"
        )
    return float(accuracy)


def row(quantity: str, order: int, x: np.ndarray, got: float, truth: float, dtype: str, by: str, move: float) -> dict:
    """One measured quantity: its largest error in ulps, where, what fn gave and the truth, and
    ``move``: how far rounding the inputs by one ulp of the dtype moves the truth there."""
    x = np.ravel(x)
    return {
        "quantity": quantity,
        "order": order,
        "max_ulps": float(ulps(np.array([got]), np.array([truth]), dtype)[0]),
        "input": [float(v) for v in np.ravel(x)],
        "got": float(got),
        "truth": float(truth),
        "measured_by": by,
        "rounding_move": float(move),
        "measurable": bool(measurable(np.array([[truth]]), x[None], dtype)[0, 0]),
    }


def beyond(rows: Sequence[dict], threshold: float) -> list[dict]:
    """The accuracy findings: quantities more than ``threshold`` ulps from the truth and more
    than :data:`GUARD` times the move of the truth under input rounding."""
    return [
        r
        for r in rows
        if r["max_ulps"] > threshold
        and r.get("measurable", True)
        and abs(r["got"] - r["truth"]) > GUARD * r.get("rounding_move", 0.0)
    ]


def _why(r: dict, atol: float, rtol: float) -> str:
    err = abs(r["got"] - r["truth"])
    tol = f"atol {atol:g} + rtol {rtol:g} x |truth|"
    if err <= tolerance(1.0, atol, rtol, r["truth"]):
        return f"the error {err:.3g} is within the tolerance {tol} (not its relative accuracy)"
    return f"the error {err:.3g} is beyond the tolerance {tol} too: a failure where the check could judge it"


def as_failures(rows: Sequence[dict], threshold: float, spec: Any, prog: Any) -> list:
    """The findings as failures (``strict=True`` or ``accuracy=``), category 'inaccurate'."""
    out = []
    for r in beyond(rows, threshold):
        x = np.asarray(r["input"], np.float64)
        out.append(
            Failure(
                kind=("value", "gradient", "second-derivative")[r["order"]],
                argument=None,
                argument_name=None,
                mode="accuracy",
                entry=r["quantity"],
                input=tuple(np.asarray(v, dtype=spec.dtype) for v in prog.unflatten(x)),
                expected=r["truth"],
                got=r["got"],
                error=abs(r["got"] - r["truth"]) / abs(r["truth"]) if r["truth"] else abs(r["got"]),
                points=1,
                shrunk=False,
                input_names=tuple(spec.leaf_names) if spec.pytree else (),
                confirmed_by=r["measured_by"],
                category="inaccurate",
                diagnosis=(
                    f"{r['max_ulps']:.3g} ulps of {spec.dtype} from the truth, beyond the accuracy threshold of "
                    f"{threshold:.3g} ulps; {_why(r, spec.atol, spec.rtol)}"
                ),
            )
        )
    return out


def lines(rows: Sequence[dict], threshold: float, dtype: str, atol: float, rtol: float) -> list[str]:
    """The report's lines on the findings that are not failures."""
    found = sorted(beyond(rows, threshold), key=lambda r: -r["max_ulps"])
    if not found:
        return []
    out = [
        f"  inaccurate ({len(found)}: beyond {threshold:.3g} ulps of {dtype} from the truth; "
        "strict=True or accuracy=ULPS makes them failures):"
    ]
    for r in found[:_SHOWN]:
        out.append(
            f"    - {r['quantity']}: {r['max_ulps']:.3g} ulps at ({_at(r)}): got {r['got']!r}, truth {r['truth']!r}; "
            f"{_why(r, atol, rtol)}"
        )
    if len(found) > _SHOWN:
        out.append(f"    ... {len(found) - _SHOWN} more in report.accuracy")
    return out


def _at(r: dict) -> str:
    """Where a quantity was measured, its first entries: ``input_shown`` where the check's own
    input is not how the user reads it (a complex argument checked as its parts), else ``input``."""
    x = r.get("input_shown") or [f"{v:.6g}" for v in r["input"]]
    return ", ".join(x[:4]) + (", ..." if len(x) > 4 else "")


def table(rows: Sequence[dict], fn_name: str, dtype: str, points: int) -> str:
    """The accuracy table as text: quantity, largest error in ulps, where, got, truth."""
    if not rows:
        return f"no accuracy table for {fn_name} (a float64 check with reference=None has no finer truth)"
    out = [
        f"accuracy of {fn_name} ({dtype}, {points} points; ulps of {dtype} at the truth):",
        f"  {'quantity':<32} {'max ulps':>12}  {'at input':<28} {'got':>24} {'truth':>24}",
    ]
    for a in rows:
        inp = _at(a)
        out.append(
            f"  {a['quantity'][:32]:<32} {a['max_ulps']:>12.3g}  {inp[:28]:<28} {a['got']:>24.17g} {a['truth']:>24.17g}"
        )
    return "\n".join(out)


# -- the measurement of each path's engine ------------------------------------------------
def of_entries(eng, X, got, q, at_kink):
    """Per quantity (each value, first and second derivative entry), the largest error in
    ulps of the dtype at the truth, and where: the float64 truth finds the worst point, the
    mpmath truth measures it (:mod:`._accuracy`)."""
    items = [("value", got.get("value"), q.values, q.status_v)]
    if "jacrev" in got or "jacfwd" in got:
        items.append(("jac", got.get("jacrev", got.get("jacfwd")), q.jac, q.status_j))
    hm = next((m for m in ("hessian fwd-over-rev", "hessian rev-over-rev", "hessian fwd-over-fwd") if m in got), None)
    if hm is not None and q.hess is not None:
        items.append(("hess", got[hm], q.hess, q.status_h))
    ok_rows = ~np.asarray(at_kink, bool)
    K, N = eng.ref.n_out, eng.ref.n_in
    found, sub_in = [], subnormal_rows(X, eng.dtype)
    for what, g, truth, status in items:
        if g is None:
            continue
        B = truth.shape[0]
        g2 = np.asarray(g, np.float64).reshape(B, -1)
        usable = (status.reshape(B, -1) == Status.USABLE) & ok_rows[:, None]
        for m, r, u in worst(g2, truth.reshape(B, -1), usable, eng.dtype, X, True, sub_in):
            flat_i = m if what == "value" else K + m if what == "jac" else K + K * N + m
            found.append((what, m, r, u, flat_i, float(g2[r, m])))
    moves = _moves(eng, X, [(r, i) for what, m, r, u, i, gv in found if u > ACCURACY_ULPS / 16])
    out = []
    for what, m, r, _u, flat_i, gv in found:
        f, st, *_ = eng.truth_at(X[r], hessian=False)
        if st[flat_i] != Status.USABLE:
            continue
        if what == "value":
            name = eng.out_name(m)
        elif what == "jac":
            k, j = divmod(m, N)
            name = f"d {eng.out_name(k)} / d {eng.input_name(j)[1]}"
        else:
            k, rest = divmod(m, N * N)
            j, l = divmod(rest, N)
            name = f"d2 {eng.out_name(k)} / d {eng.input_name(j)[1]} d {eng.input_name(l)[1]}"
        order = {"value": 0, "jac": 1, "hess": 2}[what]
        move = moves.get((r, flat_i), 0.0)
        out.append(row(name, order, X[r], gv, float(f[flat_i]), eng.dtype, "the mpmath truth", move))
    return out


def _moves(eng, X, wanted):
    """How far rounding the point by one ulp of the dtype (:func:`_perturbed`) moves the float64
    truth of each wanted (row, flat entry): the largest of the draws' moves."""
    if not wanted:
        return {}
    rows = sorted({r for r, _ in wanted})
    prog = eng.ref.float64_program()
    with np.errstate(all="ignore"):
        base, _ = prog(np.asarray(X, np.float64)[rows])
        moved, _ = prog(_perturbed(eng, (X,), rows)[0])
    flat = np.asarray(moved).reshape(_DRAWS * len(rows), -1)
    return {
        (r, i): _largest_move(flat[:, i], float(np.asarray(base)[rows.index(r), i]), len(rows), rows.index(r))
        for r, i in wanted
    }


def _named(eng, mode: str, m: int, K: int) -> tuple[str, int]:
    """A directional quantity's name in the report, and its order (probes and reference=None)."""
    if mode == "value":
        return eng.out_name(m), 0
    if mode == "jvp":
        a, k = divmod(m, K)
        return f"jvp: d {eng.out_name(k)} along a random tangent of {eng.spec.leaf_names[a]}", 1
    if mode == "fwd-over-fwd":
        return f"fwd-over-fwd: d2 {eng.out_name(m)} along two random tangents", 2
    if mode == "vjp":
        return f"vjp: c . d out / d {eng.input_name(m)[1]}", 1
    return f"{mode}: c . d2 out / d t / d {eng.input_name(m)[1]}", 2


def _perturbed(eng, arrays, rows, draws=_DRAWS):
    """``draws`` copies of each row of each array, every entry moved by up to one ulp of the
    dtype (relative): the inputs as rounding could have given them.  Row ``d * len(rows) + i``
    is draw ``d`` of ``rows[i]``."""
    rng = np.random.default_rng([eng.seed, 37])
    out = []
    for A in arrays:
        A = np.asarray(A, np.float64)[rows]
        U = rng.uniform(-1, 1, size=(draws,) + A.shape)
        out.append((A[None] * (1 + eng.eps * U)).reshape((-1,) + A.shape[1:]))
    return out


def _largest_move(moved: np.ndarray, base: float, n_rows: int, i: int) -> float:
    """The largest |moved - base| over the draws of row ``i`` (of ``n_rows``); inf where not finite."""
    d = np.abs(np.asarray(moved, np.float64).reshape(-1, n_rows)[:, i] - base)
    return float(np.max(np.where(np.isfinite(d), d, np.inf)))


def of_probes(eng, X, T, C, S, got, truth, at_kink):
    """Per mode, the largest error in ulps of the dtype (:mod:`._accuracy`): the float64
    truth finds the worst entry and point; one beyond the threshold is measured again against
    the mpmath truth, so that cancellation in the float64 truth makes no finding, and its move
    under input rounding (the point and the directions) is the float64 truth's at perturbed
    inputs."""
    K, N = eng.ref.n_out, X.shape[1]
    found, sub_in = [], subnormal_rows(X, eng.dtype)
    for mode, g in got.items():
        if mode not in truth:
            continue
        exp = truth[mode][0]
        B = exp.shape[0]
        g2, t2 = np.asarray(g, np.float64).reshape(B, -1), exp.reshape(B, -1)
        usable = (status_of(t2, eng.big) == Status.USABLE) & ~np.asarray(at_kink, bool)[:, None]
        found += [(mode, m, r, u, g2[r, m], t2[r, m]) for m, r, u in worst(g2, t2, usable, eng.dtype, X, False, sub_in)]
    rows = sorted({r for *_, r, u, _g, _t in found if u > ACCURACY_ULPS / 16})
    moved = eng.truth64(*_perturbed(eng, (X, T, C, S), rows)) if rows else {}
    out = []
    for mode, m, r, u, gv, tv in found:
        x, t, c, s = X[r], T[r], C[r], S[r]
        name, order = _named(eng, mode, m, K)
        if mode == "value":
            dirs, w, i = [], None, m
        elif mode == "jvp":
            dirs, w, i = [t * eng.masks[m // K]], None, m % K
        elif mode == "fwd-over-fwd":
            dirs, w, i = [t, s], None, m
        else:  # vjp, hvp: one input entry of a random cotangent's pull-back
            ej = np.zeros(N)
            ej[m] = 1.0
            dirs, w, i = ([ej] if mode == "vjp" else [t, ej]), c, 0
        by, move = "the float64 truth of the reference", 0.0
        if u > ACCURACY_ULPS:
            res = eng._settled(x, dirs, w)
            if res is None or res[1][i] != 0:
                continue
            tv, by = float(res[0][i]), "the mpmath truth"
        if r in rows:
            flat = np.asarray(moved[mode][0], np.float64).reshape(_DRAWS * len(rows), -1)[:, m]
            move = _largest_move(flat, float(truth[mode][0].reshape(X.shape[0], -1)[r, m]), len(rows), rows.index(r))
        out.append(row(name, order, x, gv, tv, eng.dtype, by, move))
    return out


def of_numeric(eng, X, T, C, got, own=None, values=None):
    """float32: per mode, the largest error in ulps (:mod:`._accuracy`) against fn itself in
    float64, its values and its JVP per leaf and VJP along the same directions (the programs the
    tolerance already runs: no compilation of its own; ``own``, ``values``: those derivatives and
    values where already computed); the move under input rounding is the same programs' at perturbed inputs."""
    B, K, fns = X.shape[0], eng.ref.n_out, eng.fns

    def programs(X, T, C, own=None, values=None):  # the float64 truth of each mode, (B, entries)
        n = X.shape[0]
        res = dict(own) if own else own64(fns, X, T, C, got)
        if "value" in got:
            with jax.enable_x64(True):
                res["value"] = np.asarray(fns["values"](X)) if values is None else values
        return {k: v.reshape(n, -1) for k, v in res.items() if k in got and v.size}

    truth = programs(X, T, C, own, values)
    found, sub_in = [], subnormal_rows(X, eng.dtype)
    for mode, t in truth.items():
        g = np.asarray(got[mode]).reshape(B, -1)  # in fn's dtype: :func:`worst` widens a block at a time
        found += [
            (mode, m, r, u, g[r, m], t[r, m]) for m, r, u in worst(g, t, np.isfinite(t), eng.dtype, X, False, sub_in)
        ]
    rows = sorted({r for *_, r, u, _g, _t in found if u > ACCURACY_ULPS / 16})
    moved: dict = {}
    if rows:  # the programs run in fixed chunks of their own (one compilation): no padding here
        moved = programs(*_perturbed(eng, (X, T, C), rows))
    out = []
    for mode, m, r, _u, gv, tv in found:
        name, order = _named(eng, mode, m, K)
        move = _largest_move(moved[mode][:, m], tv, len(rows), rows.index(r)) if r in rows and mode in moved else 0.0
        out.append(row(name, order, X[r], gv, tv, eng.dtype, "fn in float64 (its values, JVP and VJP)", move))
    return out
