"""The work behind gradcheck's pytest plugin: the run's profile and seed, claims as test items.

The hooks themselves live in the top-level module ``_gradcheck_pytestplugin`` (the ``pytest11``
entry point), which imports nothing heavy and imports this module only when one of its options
is used; see its docstring for why.

* :func:`use_for_run`: ``--gradcheck-profile`` / ``--gradcheck-seed`` (or their ini options)
  become :func:`gradcheck._profiles.use` overrides and the matching Hypothesis profile for the
  run, both restored when pytest unconfigures (an in-process ``pytester`` run leaves the outer
  session as it was).
* :func:`claims_collector`: ``--gradcheck-claims[=IDS]``: one :class:`ClaimItem` per selected
  claim, under one :class:`ClaimsCollector` beside the session's own collectors; node ids
  ``gradcheck-claims::<claim id>``.  The claims are those of the catalogues that the ini option
  ``gradcheck_catalogues`` names, else ``[tool.gradcheck] catalogues`` of the nearest
  ``pyproject.toml`` above the folder pytest was started in, else the installed catalogues
  (:mod:`gradcheck.catalogue._load`).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import pytest
from hypothesis import settings as hypothesis_settings

from . import _profiles
from .catalogue import CatalogueError, Claim, ClaimResult, Settings, load, resolve, select
from .catalogue._load import within

__all__ = ["ClaimItem", "ClaimMissed", "ClaimsCollector", "claims_collector", "describe", "header", "use_for_run"]


def use_for_run(config: pytest.Config, profile: str | None, profile_from: str, seed: int | None) -> None:
    """Make ``profile`` and ``seed`` (None: not chosen) the defaults of the run."""
    if profile is not None and profile not in _profiles.PROFILES:
        raise pytest.UsageError(f"{profile_from} must be one of {sorted(_profiles.PROFILES)}, got {profile!r}")
    previous = _profiles.use()  # read (and clear) what a conftest may have set: kept unless chosen
    _profiles.use(
        profile=previous["profile"] if profile is None else profile,
        seed=previous["seed"] if seed is None else seed,
    )

    def restore() -> None:
        _profiles.use(**previous)

    config.add_cleanup(restore)
    if profile is not None:
        # get_current_profile_name is recent (the project allows older Hypothesis); the private
        # attribute is what it reads
        current = getattr(hypothesis_settings, "get_current_profile_name", None)
        before = current() if current else hypothesis_settings._current_profile
        hypothesis_settings.load_profile(profile)
        if before is not None:
            config.add_cleanup(lambda: hypothesis_settings.load_profile(before))


def header() -> str:
    return (
        f"gradcheck: profile {_profiles.current_profile()} ({_profiles.default_examples()} points "
        f"per check), seed {_profiles.default_seed()}"
    )


class ClaimMissed(Exception):
    """A claim did not reach its expected verdict; ``.result`` is its ClaimResult."""

    def __init__(self, result: ClaimResult, catalogue: str | None = None):
        self.result = result
        super().__init__(describe(result, catalogue))


class ClaimItem(pytest.Item):
    """One claim of the catalogue as a test: it passes when the claim reaches its expected verdict."""

    def __init__(self, *, claim: Claim, catalogue: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.claim = claim
        self.catalogue = catalogue  # the named catalogue it comes from (for the replay command)
        self.add_marker(pytest.mark.gradcheck)
        self.add_marker(pytest.mark.gradcheck_claim(claim.id))

    def runtest(self) -> None:
        settings = Settings.from_profile(None, seed=_profiles.default_seed())
        result = self.claim.run(settings)  # never raises: an exception becomes result.error
        self.user_properties += [
            ("expected", ", ".join(self.claim.expected)),
            ("reached", ", ".join(result.reached)),
            ("profile", settings.profile),
            ("seed", settings.seed),
        ]
        if not result.ok:
            raise ClaimMissed(result, self.catalogue)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ClaimMissed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        try:  # where the claim is derived: the line a reader opens
            path = inspect.getsourcefile(self.claim.derive)
            line = inspect.getsourcelines(self.claim.derive)[1] - 1
        except (TypeError, OSError):  # a builtin or a lambda typed at a prompt has no source
            path, line = self.path, None
        return path or self.path, line, f"claim {self.claim.id}"


class ClaimsCollector(pytest.Collector):
    """The parent of the claim items, so that they read ``gradcheck-claims::<id>``."""

    def __init__(self, *, claims: list[Claim], named: list[str] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.claims = claims
        self.named = named or []

    def collect(self) -> Iterator[ClaimItem]:
        for claim in self.claims:
            catalogue = next((c for c in self.named if within(claim.module, [c])), None)
            yield ClaimItem.from_parent(self, name=claim.id, claim=claim, catalogue=catalogue)


def catalogues(config: pytest.Config) -> tuple[list[str], bool]:
    """The catalogues of the run, loaded: the ini option ``gradcheck_catalogues``, else
    ``[tool.gradcheck]`` in pyproject.toml, else the installed ones; and whether they were named."""
    named = [n for n in (config.getini("gradcheck_catalogues") or []) if n.strip()]
    try:
        pairs, was_named = resolve(named, "ini option gradcheck_catalogues", start=config.invocation_params.dir)
        load(pairs)
    except CatalogueError as e:
        raise pytest.UsageError(str(e)) from None
    return [m for m, _ in pairs], was_named


def claims_collector(session: pytest.Session, patterns: str) -> ClaimsCollector:
    """The collector of ``--gradcheck-claims=IDS``: comma-separated ids or topics, '' for all."""
    cats, named = catalogues(session.config)
    try:
        claims = select((p.strip() for p in patterns.split(",") if p.strip()), cats)
    except KeyError as e:
        raise pytest.UsageError(f"--gradcheck-claims: {e.args[0]}") from None
    return ClaimsCollector.from_parent(
        session, name="gradcheck-claims", nodeid="gradcheck-claims", claims=claims, named=cats if named else []
    )


def describe(result: ClaimResult, catalogue: str | None = None) -> str:
    """What a missed claim shows: the claim, expected and reached verdicts, and every finding."""
    claim, s = result.claim, result.settings
    lines = [
        f"claim {claim.id}: {claim.title}",
        f"  expected verdict: {', '.join(claim.expected)}",
        f"  reached verdict:  {', '.join(result.reached) or 'none'}",
    ]
    if result.findings:
        lines.append("  findings:")
    for f in result.findings:
        line = f"    {'ok ' if f.ok else 'BAD'} {f.verdict or '-':9} {f.what} ({f.method})"
        if f.counterexample is not None:
            line += f"; counterexample {f.counterexample}"
        if f.figure is not None:
            line += f"; figure {f.figure}"
        lines.append(line)
    if result.error:
        lines.append("  the claim's code raised:")
        lines += ["    " + ln for ln in result.error.rstrip().splitlines()]
    elif not result.findings:
        lines.append("  no findings: the claim's verify produced nothing")
    lines += [
        f"  checked with profile {s.profile} ({s.max_examples} points per check), seed {s.seed}, "
        f"in {result.seconds:.1f} s",
        f"  replay: pytest --gradcheck-claims={claim.id} --gradcheck-profile={s.profile} --gradcheck-seed={s.seed}",
        f"      or: gradcheck verify {claim.id}{f' --catalogue {catalogue}' if catalogue else ''} "
        f"--profile {s.profile} --seed {s.seed}",
    ]
    return "\n".join(lines)
