"""Temporary re-export: the networks moved to :mod:`gradcheck.models` (removed once proofs/ imports it)."""
from .models import *  # noqa: F401,F403
from .models import dact as _dact  # noqa: F401  (a name proofs/mlp.py uses from here)
from .symbolic import sigma  # noqa: F401  (a name tests used from here)
