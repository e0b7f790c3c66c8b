"""Scoped float64: JAX's ``enable_x64`` inside a block only, never globally.

A leaf module (it imports JAX and nothing of gradcheck), so that figures, experiments and
benchmarks can use float64 without importing the check engine.
"""

from __future__ import annotations

import contextlib

import jax

__all__ = ["float64", "dtype_context"]


@contextlib.contextmanager
def float64():
    """Enable float64 in JAX inside the block only (``jax.enable_x64`` scoped), never globally."""
    with jax.enable_x64(True):
        yield


def dtype_context(dtype: str):
    """The JAX precision context of a check in ``dtype`` ("float64" or "float32")."""
    return float64() if dtype == "float64" else jax.enable_x64(False)
