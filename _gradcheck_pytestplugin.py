"""gradcheck's pytest plugin, registered under the ``pytest11`` entry point as ``gradcheck``.

    --gradcheck-profile NAME   (ini gradcheck_profile)  "default" or "thorough" for the run
    --gradcheck-seed N         (ini gradcheck_seed)     seed of every check and claim naming none
    --gradcheck-claims[=IDS]   collect the catalogue's claims as test items, one per claim id
                               (ini gradcheck_catalogues: the catalogues whose claims it collects)
    markers: gradcheck, gradcheck_claim(id)

pytest imports every installed plugin on every run, ``pytest --help`` in an unrelated project
included, and ``import gradcheck`` imports JAX and SymPy (about 1.5 s).  So this module lives
outside the package, as Hypothesis keeps its plugin in ``_hypothesis_pytestplugin`` (importing
``gradcheck.anything`` runs ``gradcheck/__init__.py``): it imports nothing but the standard
library and pytest, and the hooks import :mod:`gradcheck.pytest_plugin`, which does the work,
only when an option is used.
"""

from __future__ import annotations

import pytest

MARKERS = (
    "gradcheck: a test that checks derivatives with gradcheck; the items of "
    "--gradcheck-claims carry it too (select with -m gradcheck)",
    "gradcheck_claim(id): an item collected by --gradcheck-claims, the claim id of "
    "gradcheck's catalogue that it verifies",
)

_HELP_CLAIMS = (
    "collect the claims of gradcheck's catalogue as test items, one per claim id, each passing "
    "when the claim reaches its expected verdict. IDS: comma-separated claim ids or topics, as "
    "`gradcheck verify` takes them (default: every claim); write --gradcheck-claims=IDS, since "
    "a separate argument would be read as IDS"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gradcheck", "gradcheck: checks of derivatives and the claim catalogue")
    group.addoption(
        "--gradcheck-profile",
        dest="gradcheck_profile",
        default=None,
        metavar="NAME",
        help="gradcheck profile of the run, 'default' or 'thorough': points per check and the "
        "Hypothesis profile loaded (default: ini gradcheck_profile, else $HYPOTHESIS_PROFILE, "
        "else 'default')",
    )
    group.addoption(
        "--gradcheck-seed",
        dest="gradcheck_seed",
        default=None,
        metavar="N",
        help="seed of every gradcheck check and claim that names none (default: ini gradcheck_seed, else 0)",
    )
    group.addoption(
        "--gradcheck-claims",
        dest="gradcheck_claims",
        nargs="?",
        const="",
        default=None,
        metavar="IDS",
        help=_HELP_CLAIMS,
    )
    parser.addini("gradcheck_profile", "gradcheck profile of the run (see --gradcheck-profile)", default="")
    parser.addini("gradcheck_seed", "seed of gradcheck checks naming none (see --gradcheck-seed)", default="")
    parser.addini(
        "gradcheck_catalogues",
        "modules of claims that --gradcheck-claims collects (default: [tool.gradcheck] catalogues in "
        "pyproject.toml, else the installed catalogues)",
        type="args",
        default=[],
    )


def _chosen(config: pytest.Config) -> tuple[str | None, str | None, int | None, str | None]:
    """(profile, where it was set, seed, where it was set): the command line beats the ini file."""
    profile, profile_from = config.getoption("gradcheck_profile"), "--gradcheck-profile"
    if profile is None:
        profile, profile_from = (
            (config.getini("gradcheck_profile") or "").strip() or None,
            "ini option gradcheck_profile",
        )
    raw, seed_from = config.getoption("gradcheck_seed"), "--gradcheck-seed"
    if raw is None:
        raw, seed_from = (config.getini("gradcheck_seed") or "").strip() or None, "ini option gradcheck_seed"
    seed = None
    if raw is not None:
        seed = int(raw) if raw.isascii() and raw.isdigit() else None  # no sign: >= 0
        if seed is None:
            raise pytest.UsageError(f"{seed_from} must be an integer >= 0, got {raw!r}")
    return profile, profile_from, seed, seed_from


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    profile, profile_from, seed, _ = _chosen(config)
    if profile is not None or seed is not None:
        from gradcheck import pytest_plugin  # JAX, SymPy, Hypothesis: only when asked for

        pytest_plugin.use_for_run(config, profile, profile_from, seed)


def pytest_report_header(config: pytest.Config) -> str | None:
    profile, _, seed, _ = _chosen(config)
    if profile is None and seed is None and config.getoption("gradcheck_claims") is None:
        return None  # nothing chosen: say nothing, and import nothing
    from gradcheck import pytest_plugin

    return pytest_plugin.header()


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    # the claims join the session's own collectors, so that they are collected, counted, listed
    # by --collect-only and filtered by -k, -m, --deselect and --lf as any test is
    report = yield
    patterns = collector.config.getoption("gradcheck_claims")
    if patterns is not None and isinstance(collector, pytest.Session) and report.passed:
        from gradcheck import pytest_plugin

        report.result.append(pytest_plugin.claims_collector(collector, patterns))
    return report
