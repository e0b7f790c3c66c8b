"""The record of the environment a run happened in: what a reader needs to compare two runs.

One recorder for the report (``results.json``), the benchmarks and the experiments.  A leaf:
it imports no other module of the package (the versions come from package metadata, which is
also where ``gradcheck.__version__`` comes from).
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import os
import platform
from typing import Any

import jax

__all__ = ["PACKAGES", "environment"]

#: The packages a verdict depends on, in the order the report lists them.
PACKAGES = ("gradcheck", "jax", "jaxlib", "sympy", "mpmath", "numpy", "scipy", "hypothesis", "matplotlib")


def _package_versions() -> dict[str, str]:
    """Versions of Python and of every package in :data:`PACKAGES` (``"not installed"`` where absent)."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _devices() -> dict[str, Any]:
    try:
        devs = jax.devices()
        return {
            "platform": devs[0].platform,
            "kind": devs[0].device_kind,
            "count": len(devs),
            "backend": jax.default_backend(),
            "text": f"{len(devs)} x {devs[0].device_kind} ({jax.default_backend()})",
        }
    except Exception as e:  # no backend could start: the record is still worth writing
        return {
            "platform": None,
            "kind": None,
            "count": 0,
            "backend": None,
            "text": f"unknown device ({type(e).__name__})",
        }


def environment() -> dict[str, Any]:
    """Python, platform, package versions, devices, CPU count and load, and the UTC date.

    ``{"python": "3.12.3", "platform": "Linux-...", "machine": "x86_64", "packages": {...},
    "device": "1 x cpu (cpu)", "devices": {"platform", "kind", "count", "backend"},
    "cpu_count": 16, "load_average": [0.5, 0.4, 0.3] or None, "date": "2025-01-01T00:00:00+00:00"}``
    """
    devices = _devices()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "packages": _package_versions(),
        "device": devices.pop("text"),
        "devices": devices,
        "cpu_count": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
