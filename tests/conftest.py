"""Shared set-up of the test suite: the Hypothesis profile, and small helpers for reports.

``gradcheck._profiles`` registers two profiles, ``default`` (``make test``) and ``thorough``
(``make test-thorough``); ``HYPOTHESIS_PROFILE`` picks one, as in Hypothesis's own suite.
The profile also scales how many points each ``gradcheck.check`` call sweeps, through the
``examples`` fixture.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

import gradcheck._profiles as profiles

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "default")
settings.load_profile(PROFILE)  # an unknown name raises here, before any test runs


@pytest.fixture(scope="session")
def examples() -> int:
    """Points per ``gradcheck.check`` call: 200 in the default profile, more when thorough."""
    return profiles.PROFILES[profiles.current_profile()]["max_examples"]
