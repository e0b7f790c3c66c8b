"""One way ``fn`` disagreed with the truth: :class:`Failure`, as the report prints it."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ._args import array_repr

__all__ = ["Failure"]


@dataclasses.dataclass(frozen=True)
class Failure:
    """One way ``fn`` disagreed with the truth, at its simplest (shrunk) input.

    ``kind`` is 'value', 'gradient', 'second-derivative' or 'non-finite'; ``argument`` the index
    (and ``argument_name`` the parameter name) of the argument whose derivative is wrong (None
    for values); ``mode`` which computation showed it (``value``, ``jacfwd``, ``jacrev``,
    ``jvp``, ``vjp``, ``hessian fwd-over-rev``, ...); ``entry`` which entry; ``input`` the
    arguments as arrays; ``expected`` the mpmath truth, ``got`` what ``fn`` gave, ``error`` the
    relative error ``|got - expected| / |expected|`` (the absolute error where the truth is 0);
    ``points`` at how many checked points this (kind, argument) failed, each confirmed by the
    mpmath truth (disagreements beyond the referee's budget are counted in the report's
    ``unrefereed_points``, never here).
    """

    kind: str
    argument: int | None
    argument_name: str | None
    mode: str
    entry: str
    input: tuple
    expected: float
    got: float
    error: float
    points: int
    shrunk: bool
    message: str = ""
    #: leaf names (``params['W']``) when an argument is a pytree; ``input`` then holds its leaves
    input_names: tuple = ()
    #: ``args=`` checks: an ``.npz`` of the leaves at the failing point (``gradcheck.load_args``)
    input_file: str = ""
    #: what confirmed it: the mpmath truth, or (reference=None) the numerical truth's error bound
    confirmed_by: str = "the mpmath truth"
    #: what kind of failure this is, computed at its input (:mod:`gradcheck._check._diagnose`):
    #: "wrong rule", "custom rule", "raised", "precision loss", "range limit", "undefined entry",
    #: "precision" or "inaccurate" (an accuracy finding under strict=True or accuracy=)
    category: str = "wrong rule"
    #: the facts behind the category (float64 at the same input, forward vs reverse, jit vs eager)
    diagnosis: str = ""

    def record(self, brief: bool = False) -> dict[str, Any]:
        """Plain JSON; ``brief`` for the notes beside the failures (range limits, accuracy notes)."""
        rec: dict[str, Any] = {"kind": self.kind}
        if not brief:
            rec["argument"] = self.argument
        rec.update(mode=self.mode, entry=self.entry, input=self.input_repr(), expected=self.expected, got=self.got)
        rec["error"] = self.error
        if not brief:
            rec.update(points=self.points, message=self.message, category=self.category)
        rec["diagnosis"] = self.diagnosis
        return rec

    def input_repr(self) -> str:
        parts = []
        for a in self.input:
            a = np.asarray(a)
            parts.append(repr(float(a)) if a.ndim == 0 else array_repr(a))
        if self.input_names:
            return "{" + ", ".join(f"{n}: {p}" for n, p in zip(self.input_names, parts)) + "}"
        return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"

    def __str__(self) -> str:
        where = f" d/d {self.argument_name}" if self.argument is not None else ""
        head = f"[{self.category}] {self.kind}{where} [{self.mode}] {self.entry}"
        if self.message:
            return f"{head}: {self.message}"
        return (
            f"{head}\n      input:    {self.input_repr()}{'  (shrunk)' if self.shrunk else ''}\n"
            + (
                f"      input file: {self.input_file} (all of it: gradcheck.load_args(path, args))\n"
                if self.input_file
                else ""
            )
            + f"      expected: {self.expected!r}\n      got:      {self.got!r}\n"
            f"      error:    {self.error:.3g} {'relative' if self.expected else 'absolute (the truth is 0)'}; failed at {self.points} point(s), "
            f"each confirmed by {self.confirmed_by}"
            + (f"\n      diagnosis: {self.diagnosis}" if self.diagnosis else "")
        )
