"""Hypothesis settings profiles: ``default`` for ``make test``, ``thorough`` for long runs.

Picked with the ``HYPOTHESIS_PROFILE`` environment variable, as Hypothesis itself does.  The
profile also sets how many points the numerical half of a claim checks.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

PROFILES = {
    # fast enough that the whole suite runs in a few minutes on 2 cores
    "default": {"max_examples": 200, "hypothesis_examples": 60},
    # what a release or a paper's verification record should use
    "thorough": {"max_examples": 5000, "hypothesis_examples": 1000},
}

_SUPPRESS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

for _name, _p in PROFILES.items():
    settings.register_profile(
        f"gradcheck-{_name}",
        max_examples=_p["hypothesis_examples"],
        deadline=None,  # JAX compiles on first call: keep compile time out of deadlines
        database=None,  # replay comes from the printed seed, not from a local database
        suppress_health_check=_SUPPRESS,
        print_blob=False,
    )
    # plain names too, so that HYPOTHESIS_PROFILE=thorough works for the test suite
    settings.register_profile(_name, parent=settings.get_profile(f"gradcheck-{_name}"))


def current_profile() -> str:
    name = os.environ.get("HYPOTHESIS_PROFILE", "default")
    if name not in PROFILES:
        raise ValueError(f"HYPOTHESIS_PROFILE must be one of {sorted(PROFILES)}, got {name!r}")
    return name


def hypothesis_settings(max_examples: int | None = None, profile: str | None = None) -> settings:
    base = settings.get_profile(f"gradcheck-{profile or current_profile()}")
    if max_examples is None:
        return base
    return settings(base, max_examples=max_examples)
