"""Hypothesis settings profiles: ``default`` for ``make test``, ``thorough`` for long runs.

Picked with the ``HYPOTHESIS_PROFILE`` environment variable, as Hypothesis itself does, or for
the whole process with :func:`use` (the pytest plugin's ``--gradcheck-profile`` and
``--gradcheck-seed``), which wins over the environment.  The profile also sets how many points
the numerical half of a claim checks.

    use(profile=None, seed=None) -> dict   set (None: clear) the process-wide overrides
    current_profile()                      the override, else $HYPOTHESIS_PROFILE, else "default"
    default_seed()                         the override, else 0
    default_examples()                     the current profile's points per check
"""

from __future__ import annotations

import os
from typing import Any

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


# process-wide overrides set by use(); None: not overridden
_OVERRIDES: dict[str, Any] = {"profile": None, "seed": None}


def use(profile: str | None = None, seed: int | None = None) -> dict[str, Any]:
    """Set the profile and seed that checks and claims use when a call names none.

    ``None`` clears that override: the profile falls back to ``HYPOTHESIS_PROFILE`` (else
    ``"default"``), the seed to 0.  Returns the previous overrides, so that ``use(**previous)``
    restores them.  Only gradcheck's defaults change; loading the matching Hypothesis profile
    for other tests is the caller's choice (the pytest plugin does it).
    """
    if profile is not None and profile not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {profile!r}")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    previous = dict(_OVERRIDES)
    _OVERRIDES.update(profile=profile, seed=seed)
    return previous


def current_profile() -> str:
    if _OVERRIDES["profile"] is not None:
        return _OVERRIDES["profile"]
    name = os.environ.get("HYPOTHESIS_PROFILE", "default")
    if name not in PROFILES:
        raise ValueError(f"HYPOTHESIS_PROFILE must be one of {sorted(PROFILES)}, got {name!r}")
    return name


def default_seed() -> int:
    """The seed of a check or claim that names none: the override set by :func:`use`, else 0."""
    return 0 if _OVERRIDES["seed"] is None else _OVERRIDES["seed"]


def default_examples() -> int:
    """Points per check of the current profile (200 by default, 5000 when thorough)."""
    return PROFILES[current_profile()]["max_examples"]


def hypothesis_settings(max_examples: int | None = None, profile: str | None = None) -> settings:
    base = settings.get_profile(f"gradcheck-{profile or current_profile()}")
    if max_examples is None:
        return base
    return settings(base, max_examples=max_examples)
