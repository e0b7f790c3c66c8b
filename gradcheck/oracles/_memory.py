"""The process's memory settings while a check runs, and back after.

A check of a model makes and drops hundreds of arrays of tens to hundreds of megabytes.  Two
defaults made each of them cost page faults on its first touch, so that a 150,000-parameter
check spent more time in the kernel than in its arithmetic:

* NumPy advises ``madvise(MADV_HUGEPAGE)`` on large arrays; where the kernel compacts memory
  to serve a huge page on first touch (``defrag`` set to ``madvise``, a common default), every
  such array stalled: 22 s of a 31 s check in the kernel with the advice, 5.5 s of 15 without.
* glibc serves a block above its mmap threshold (at most 32 MiB) by a fresh mapping and gives
  free memory at the top of its heap back to the kernel (above its trim threshold): every call
  of a batched program faulted its arrays in anew.  With both thresholds raised for the
  check, a warm 150,000-parameter check took 6.5 s instead of 9.5 s, with 0.4 million page
  faults instead of 1.35 million.

:func:`steady_memory` changes both while a check runs.  The settings are the process's: checks
nested or run in several threads at once count who holds them, and the last to leave puts
them back.  NumPy's advice is restored exactly.  glibc's thresholds cannot be read, and once
set they stop moving by themselves, so they are left where glibc's own rule takes them in any
process that has freed a large array (mmap threshold 32 MiB, trim threshold 64 MiB), after the
memory the check held is given back (``malloc_trim``).  Where NumPy's setter or glibc is
missing (other C libraries, macOS, Windows), that part is left alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import platform
import threading

import numpy as np

__all__ = ["steady_memory", "HEAP_MMAP_THRESHOLD", "HEAP_TRIM_THRESHOLD"]

#: glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: While a check runs: blocks up to 1 GiB come from the heap, and the heap is not trimmed.
HEAP_MMAP_THRESHOLD = 1 << 30
HEAP_TRIM_THRESHOLD = (1 << 31) - 1
#: After: where glibc's dynamic rule stops (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit, trim 2x that).
_AFTER = {_M_MMAP_THRESHOLD: 32 << 20, _M_TRIM_THRESHOLD: 64 << 20}

_LOCK = threading.Lock()
_STATE: dict = {"held": 0, "pages": True}  # checks inside steady_memory; NumPy's setting they found


def _numpy_setter():
    core = getattr(np, "_core", None) or getattr(np, "core", None)  # NumPy 2, NumPy 1
    return getattr(getattr(core, "multiarray", None), "_set_madvise_hugepage", None)


def _glibc():
    """glibc's ``mallopt`` and ``malloc_trim``, or None (another C library or system)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(None)
        return libc.mallopt, libc.malloc_trim
    except (OSError, AttributeError):
        return None


def _enter() -> None:
    setter, glibc = _numpy_setter(), _glibc()
    if setter is not None:
        _STATE["pages"] = setter(False)
    if glibc is not None:
        glibc[0](_M_MMAP_THRESHOLD, HEAP_MMAP_THRESHOLD)
        glibc[0](_M_TRIM_THRESHOLD, HEAP_TRIM_THRESHOLD)


def _leave() -> None:
    setter, glibc = _numpy_setter(), _glibc()
    if setter is not None:
        setter(_STATE["pages"])
    if glibc is not None:
        glibc[1](0)
        for param, value in _AFTER.items():
            glibc[0](param, value)


@contextlib.contextmanager
def steady_memory():
    """NumPy's large arrays without huge-page advice and glibc's heap kept whole while the body
    runs (see the module's docstring); the last of nested or concurrent holders restores."""
    with _LOCK:
        if not _STATE["held"]:
            _enter()
        _STATE["held"] += 1
    try:
        yield
    finally:
        with _LOCK:
            _STATE["held"] -= 1
            if not _STATE["held"]:
                _leave()
