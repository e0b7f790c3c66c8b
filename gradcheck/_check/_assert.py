"""``gradcheck.assert_check``: :func:`gradcheck.check` as an assertion for tests.

``assert report.ok`` fails with ``assert False`` and pytest shows the Report's dataclass repr;
``assert_check`` fails with the readable report instead, the replay call included, and pytest
points at the test's own line (``__tracebackhide__``, pytest's convention, hides this frame).
"""

from __future__ import annotations

import inspect

from ._pipeline import check
from ._report import Report


class CheckFailed(AssertionError):
    """A check found failures.  ``str()`` is the readable report; ``.report`` is the Report."""

    def __init__(self, report: Report):
        self.report = report
        text = str(report)
        replay = report.replay()
        if replay not in text:  # the report prints it on failure; keep it even if that changes
            text += f"\n  replay: {replay}"
        super().__init__(text)

    def __reduce__(self):
        # an exception pickles as cls(*self.args), which would pass the text as the report
        return CheckFailed, (self.report,)


CheckFailed.__module__ = "gradcheck"  # pytest prints "gradcheck.CheckFailed", the public name


def assert_check(*args, **kwargs) -> Report:
    """Run :func:`gradcheck.check` with exactly its arguments; raise :class:`CheckFailed` if not ok.

    Returns the Report when the check passes, so a test can look further (``report.notes``,
    ``report.points_checked``).  Bad arguments raise as in ``check`` (``ValueError``,
    ``TypeError``), not as a failed assertion.
    """
    __tracebackhide__ = True
    report = check(*args, **kwargs)
    if not report.ok:
        raise CheckFailed(report)
    return report


# check's own signature, so that help() and editors show its arguments; the body forwards them
# unchanged (and so follows any change to check's signature).  typeshed declares no
# __signature__ on functions, though inspect.signature reads it (setattr would trip ruff's B010).
assert_check.__signature__ = inspect.signature(check)  # type: ignore[attr-defined]
