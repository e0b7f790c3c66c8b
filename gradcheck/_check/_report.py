"""What a check found: :class:`Failure` and :class:`Report` (the last stage of the pipeline)."""

from __future__ import annotations

import dataclasses
from typing import Any

from ._accuracy import ACCURACY_ULPS, lines as accuracy_lines, table as accuracy_table
from ._failure import Failure
from ._spec import TINY_INPUT, TOLERANCES

__all__ = ["Failure", "Report", "REFEREE_CAP", "report_notes", "tally_fields"]

REFEREE_CAP = 256  # points refereed with mpmath per check; beyond it points stay "unrefereed"


@dataclasses.dataclass
class Report:
    """What :func:`check` found.  ``ok`` is True when there are no failures."""

    failures: list[Failure]
    fn_name: str
    shapes: list[tuple]
    domain: list[tuple[float, float]]
    order: int
    dtype: str
    rtol: float
    atol: float
    seed: int
    max_examples: int
    hypothesis_examples: int
    points_checked: int
    modes: dict[str, str]
    kinks: str
    kink_points: int
    refereed_points: int
    unrefereed_points: int
    undefined_points: int
    seconds: dict[str, float]
    devices: int = 1
    notes: list[str] = dataclasses.field(default_factory=list)
    #: how the truth's derivatives were obtained: "entries" (SymPy, entry by entry) or "probes"
    path: str = "entries"
    #: how the reference was evaluated, in words (float64 route, referee)
    truth: str = ""
    #: the names of the leaves of pytree arguments, when any argument is a pytree
    leaves: list[str] = dataclasses.field(default_factory=list)
    #: precision artefacts of the dtype (the same function right in float64, the error within the
    #: dtype's resolution or under jit only): not failures unless ``strict=True``
    accuracy_notes: list = dataclasses.field(default_factory=list)
    #: failures only where the dtype's range runs out (subnormal inputs, squares beyond the
    #: range), the same function right in float64: not wrong rules, not failures unless strict
    range_limits: list = dataclasses.field(default_factory=list)
    #: non-finite derivatives of defined entries at points where other entries are undefined
    undefined_spill: list = dataclasses.field(default_factory=list)
    strict: bool = False
    #: per quantity: the largest error in ulps of the dtype against the truth, and where
    #: (:mod:`._accuracy`): each value, first and second derivative entry on the entries path,
    #: each mode on the probes path, float32 with reference=None; empty for float64 there
    accuracy: list = dataclasses.field(default_factory=list)
    #: the accuracy threshold in ulps: quantities beyond it are printed as inaccurate
    accuracy_ulps: float = ACCURACY_ULPS
    #: whether those are failures (strict=True or accuracy=) rather than printed findings
    accuracy_failing: bool = False
    #: points where fn, the float64 truth and the referee all agreed, re-judged against the
    #: mpmath truth anyway (so that an error shared by fn and the float64 truth cannot hide)
    audited_points: int = 0
    #: reference=None: points where the numerical truth could not judge some quantity
    unjudged_points: int = 0
    #: points left unjudged, per reason (what ``judged_fraction`` leaves out, said in words)
    not_judged: dict = dataclasses.field(default_factory=dict)
    #: points judged on their defined entries only (the reference undefined at some others)
    partly_judged_points: int = 0
    referee_cap: int = 0
    #: reference=None, per dtype judged: {"disagreed", "measured", "presumed"}: points that disagreed
    #: beyond the tolerance before fn's own rounding was allowed for, and of them those within it,
    #: measured at the point (Monte Carlo arithmetic) or taken as the measured points of their mode
    rounding: dict = dataclasses.field(default_factory=dict)
    #: ``args=``: which leaves were differentiated and which held fixed, and how the points moved
    at_values: str = ""
    radius: float | None = None

    @property
    def ok(self) -> bool:
        return not self.failures

    def __repr__(self) -> str:
        # ``assert report.ok`` in a test shows this: the readable report, not the dataclass fields
        return str(self)

    def replay(self) -> str:
        if self.at_values:
            saved = next((f.input_file for f in self.failures if f.input_file), "")
            given = f"gradcheck.load_args({saved!r}, args)" if saved else "args"
            return (
                f"gradcheck.check({self.fn_name}, None, args={given}, radius={self.radius:g}, "
                f"max_examples={self.max_examples}, seed={self.seed}, rtol={self.rtol:g}, atol={self.atol:g}{self._also()})"
            )
        dom = self.domain[0] if len(set(self.domain)) == 1 else self.domain
        return (
            f"gradcheck.check({self.fn_name}, reference, shapes={self.shapes}, domain={dom}, "
            f"order={self.order}, dtype={self.dtype!r}, max_examples={self.max_examples}, "
            f"seed={self.seed}, rtol={self.rtol:g}, atol={self.atol:g}{self._also()})"
        )

    def _also(self) -> str:
        """The replay line's strict= and accuracy=, where they were given."""
        also = ", strict=True" if self.strict else ""
        if self.accuracy_failing and (not self.strict or self.accuracy_ulps != ACCURACY_ULPS):
            also += f", accuracy={self.accuracy_ulps:g}"
        return also

    @property
    def judged_fraction(self) -> float:
        """The share of checked points at which the truth could judge fn (not undefined there, not
        left unrefereed, and for reference=None the differences settled)."""
        if not self.points_checked:
            return 1.0
        left = self.undefined_points + self.unrefereed_points + self.unjudged_points
        return max(0.0, 1.0 - left / self.points_checked)

    def accuracy_table(self) -> str:
        """The accuracy table as text: quantity, largest error in ulps, where, got, truth."""
        return accuracy_table(self.accuracy, self.fn_name, self.dtype, self.points_checked)

    def record(self) -> dict[str, Any]:
        """The verification record: what was checked and how, for reports and papers."""
        return {
            "function": self.fn_name,
            "shapes": [list(s) for s in self.shapes],
            "domain": [list(d) for d in self.domain],
            "order": self.order,
            "dtype": self.dtype,
            "tolerance": {"rtol": self.rtol, "atol": self.atol},
            "examples": self.points_checked,
            "max_examples": self.max_examples,
            "hypothesis_examples": self.hypothesis_examples,
            "seed": self.seed,
            "modes": dict(self.modes),
            "kinks": self.kinks,
            "kink_points": self.kink_points,
            "refereed_points": self.refereed_points,
            "unrefereed_points": self.unrefereed_points,
            "undefined_points": self.undefined_points,
            "devices": self.devices,
            "path": self.path,
            "truth": self.truth,
            "strict": self.strict,
            "accuracy": list(self.accuracy),
            "accuracy_ulps": self.accuracy_ulps,
            "inaccurate": [r["quantity"] for r in self.accuracy if r["max_ulps"] > self.accuracy_ulps],
            "audited_points": self.audited_points,
            "rounding": {k: dict(v) for k, v in self.rounding.items()},
            "unjudged_points": self.unjudged_points,
            "not_judged": dict(self.not_judged),
            "partly_judged_points": self.partly_judged_points,
            "judged_fraction": self.judged_fraction,
            **{
                name: [f.record(brief=True) for f in items]
                for name, items in (
                    ("range_limits", self.range_limits),
                    ("undefined_spill", self.undefined_spill),
                    ("accuracy_notes", self.accuracy_notes),
                )
            },
            "notes": list(self.notes),
            "seconds": {k: round(v, 4) for k, v in self.seconds.items()},
            "ok": self.ok,
            "failures": [f.record() for f in self.failures],
            "replay": self.replay(),
        }

    def __str__(self) -> str:
        status = "ok" if self.ok else f"FAILED ({len(self.failures)} failure{'s' * (len(self.failures) != 1)})"
        if self.judged_fraction < 0.9:
            status += f" -- but only {self.judged_fraction:.0%} of the points could be judged (see the notes for why)"
        where = (
            f"  {self.at_values}\n"
            if self.at_values
            else f"shapes {self.shapes}, domain {self.domain if len(set(self.domain)) > 1 else self.domain[0]}, "
        )
        lines = [
            f"gradcheck.check of {self.fn_name}: {status}",
            f"  checked {self.points_checked} points ({self.max_examples} sampled, "
            f"{self.hypothesis_examples} Hypothesis examples), "
            + ("" if self.at_values else where)
            + f"{self.dtype}, order {self.order}"
            + ("\n" + where.rstrip("\n") if self.at_values else ""),
            f"  tolerance: |got - truth| <= {self.atol:g} + {self.rtol:g} |truth| + 16 eps cond ({self.dtype} table; "
            "cond: how far rounding at the inputs' size moves the result"
            + (f", second derivatives x{TOLERANCES[self.dtype]['order2_factor']:g}" if self.order == 2 else "")
            + ")",
        ]
        if self.truth:
            lines.append(f"  truth: {self.truth}")
        for mode, what in self.modes.items():
            lines.append(f"  {mode}: {what}")
        lines.append(f"  kinks: {self.kinks}")
        if self.refereed_points or self.unrefereed_points:
            lines.append(
                f"  referee: {self.refereed_points} point(s) re-evaluated with the mpmath truth (50 digits, more where the reference cancels)"
                + (
                    f", {self.unrefereed_points} more disagreeing point(s) left unrefereed "
                    f"(cap {self.referee_cap or REFEREE_CAP})"
                    if self.unrefereed_points
                    else ""
                )
            )
        lines.extend(rounding_lines(self.rounding))
        if self.not_judged:
            lines.append(f"  not judged: {sum(self.not_judged.values())} point(s), because")
            lines.extend(f"    - {n} point(s): {why}" for why, n in self.not_judged.items())
        elif self.undefined_points:
            lines.append(f"  {self.undefined_points} point(s) skipped where the reference is undefined")
        if self.partly_judged_points:
            lines.append(
                f"  {self.partly_judged_points} point(s) judged on their defined entries only "
                "(the reference is undefined at some of their other entries)"
            )
        for note in self.notes:
            lines.append(f"  note: {note}")
        if self.audited_points:
            lines.append(
                f"  audit: {self.audited_points} point(s) where everything agreed were re-judged "
                "against the mpmath truth too"
            )
        for i, f in enumerate(self.failures, 1):
            lines.append(f"  {i}. {f}")
        for items, what in (
            (
                self.range_limits,
                f"range limits ({len(self.range_limits)}: where {self.dtype}'s "
                "range runs out, not wrong rules; strict=True makes them failures):",
            ),
            (
                self.undefined_spill,
                f"beside undefined entries ({len(self.undefined_spill)}: non-finite where another entry of the "
                "point is undefined, not wrong rules; strict=True makes them failures):",
            ),
            (
                self.accuracy_notes,
                f"accuracy notes ({len(self.accuracy_notes)}: precision of "
                f"{self.dtype}, not wrong rules; strict=True makes them failures):",
            ),
        ):
            if items:
                lines.append(f"  {what}")
                lines.extend(
                    f"    - {f.kind} [{f.mode}] {f.entry} at {f.input_repr()}: got {f.got!r}, "
                    f"truth {f.expected!r}; {f.diagnosis}"
                    for f in items
                )
        if not self.accuracy_failing:
            lines.extend(accuracy_lines(self.accuracy, self.accuracy_ulps, self.dtype, self.atol, self.rtol))
        if not self.ok:
            lines.append(f"  replay: {self.replay()}")
        return "\n".join(lines)


def not_judged(undefined: int, unrefereed: int, cap: int, unsettled: dict) -> dict[str, int]:
    """Points the truth could not judge, counted per reason (only the reasons that occurred)."""
    reasons = {
        "the reference is undefined there (complex, a division by zero, NaN, or no precision settled)": undefined,
        f"they disagreed, but past the referee's cap of {cap} points per check": unrefereed,
    }
    for mode, n in unsettled.items():
        reasons[
            f"in {mode}, the float64 function was not finite or the extrapolated differences did not settle "
            "(a kink, a pole, a discontinuity)"
        ] = n
    return {why: int(n) for why, n in reasons.items() if n}


def kinks_line(ref, no_reference: bool, kink_points: int) -> str:
    """The report's ``kinks:`` line."""
    if no_reference:
        return "unknown (no reference): points where the differences do not settle are not judged"
    if not ref.kinks:
        return "none in the reference"
    return (
        f"{len(ref.kinks)} kink expression(s) found in the reference ("
        + ", ".join(str(k) for k in ref.kinks[:4])
        + (", ..." if len(ref.kinks) > 4 else "")
        + f"); derivatives at {kink_points} point(s) on a kink were not compared"
        + (" (nor values: the reference may jump there, at a Heaviside, sign, floor or Piecewise)" if ref.jumps else "")
        + "; points beside the kinks were sampled and checked"
    )


def truth_line(path: str, n_in: int, n_out: int, order: int, why: str = "") -> str:
    """The report's ``truth:`` line for a SymPy reference, on the entries or the probes path, and
    ``why`` that path ran (:func:`~gradcheck._check._pipeline.choose_path`)."""
    entries = n_out * n_in * (n_in if order == 2 else 1)
    if path == "entries":
        return (
            f"path entries: the reference's Jacobian{' and Hessian' if order == 2 else ''} "
            f"expanded in SymPy ({entries} derivative entries), "
            "evaluated in float64 NumPy (special functions from SciPy/mpmath, never JAX); "
            "disagreements refereed in long double, then mpmath"
        )
    return (
        f"path probes ({why or 'asked for'}): "
        "JVP, VJP"
        + (" and Hessian-vector products" if order == 2 else "")
        + " of the reference by automatic differentiation of its SymPy DAG in float64 NumPy "
        "(independent of JAX); disagreements refereed by mpmath central differences at 50+ digits"
    )


def range_note(dtype: str, tiny: float) -> str:
    """The note on the range points, which a check over a domain adds to its sweep."""
    return (
        f"the random sweep draws no nonzero input below {tiny:g} in magnitude (their squares "
        f"underflow {dtype}); 16 range points (subnormals, the smallest normal, near sqrt(tiny), sqrt(max) "
        "and the largest float) are checked apart, and what fails only there because the range runs out "
        "is listed as a range limit"
    )


def report_notes(notes: list[str], dtype: str, at_values: bool, nested_draws: int) -> list[str]:
    """The report's notes: the pipeline's, the range points' of a box check, and, inside the
    caller's own Hypothesis test, why Hypothesis's draws were replaced (``nested_draws`` of them)."""
    out = list(notes) + ([] if at_values else [range_note(dtype, TINY_INPUT[dtype])])
    if nested_draws:
        out.append(
            f"called inside a Hypothesis test: Hypothesis's draws were replaced by {nested_draws} more swept "
            "points (Hypothesis refuses a nested @given)"
        )
    return out


def tally_fields(tally: Any, cap: int) -> dict[str, Any]:
    """The report's fields from the engine's tally (:class:`._engine.Tally`) and referee budget."""
    return dict(
        kink_points=tally.kink_points,
        refereed_points=tally.refereed,
        unrefereed_points=tally.unrefereed,
        undefined_points=tally.undefined,
        unjudged_points=max(tally.unjudged.values(), default=0),
        not_judged=not_judged(tally.undefined, tally.unrefereed, cap, tally.unjudged),
        partly_judged_points=tally.partly_undefined,
        referee_cap=cap,
        audited_points=tally.audited,
        rounding={k: dict(v) for k, v in tally.rounding.items()},
    )


def rounding_lines(rounding: dict) -> list[str]:
    """The report's ``rounding:`` lines (reference=None): per dtype judged, how many points
    disagreed before fn's own rounding was allowed for, how many of them are within it, and how
    many fail."""
    out = []
    for dtype, n in rounding.items():
        d, m, p = n["disagreed"], n["measured"], n["presumed"]
        how = f"{m} measured there by Monte Carlo arithmetic" + (
            f", {p} more taken as within it, as the measured points of their mode were" if p else ""
        )
        within = f"{m + p} of them within it ({how})" if m + p else "none of them within it"
        out.append(
            f"  rounding ({dtype}): {d} point(s) disagreed beyond the tolerance before fn's own rounding "
            f"was allowed for; {within}" + (f"; {d - m - p} fail" if d > m + p else "")
        )
    return out
