"""A derivation as data: ordered steps ``lhs = rhs`` and the statement they establish.

These live with the symbolic layer (not with the catalogue) because the models build their
own derivation steps (the chain rule of a deep chain) and the catalogue sits above them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["Step", "Derivation"]


@dataclasses.dataclass(frozen=True)
class Step:
    """One line of a derivation: ``lhs = rhs``, with a short prose note on why.

    ``lhs`` is usually a SymPy object naming the quantity (a ``Derivative`` or a Symbol with a
    LaTeX name such as ``\\frac{\\partial C}{\\partial b_1}``); ``rhs`` is what SymPy computed.
    """

    lhs: Any
    rhs: Any
    note: str = ""


@dataclasses.dataclass
class Derivation:
    """The symbolic half of a claim.

    ``statement`` is the precise statement as SymPy relation(s) (``Eq``, ``Le``, ...), or a list
    of them.  ``steps`` is the derivation in order.  ``objects`` holds whatever the verifying
    half needs (the derived expression, the symbols, the network) so it does not derive twice.
    """

    statement: Any
    steps: list[Step] = dataclasses.field(default_factory=list)
    objects: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.objects[key]
