"""What ``track_spend()`` and ``measure`` are asked: an organization or every one, and for the
ledger (``history._ledger``) a label, note, budget and expected cost; each checked before
anything is read.

Standard library only and loaded without the store: ``measure --label`` with the history off
checks its label without SQLite.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass

from ._credits import check_credits
from ._exceptions import ConfigurationError

__all__ = [
    "LABEL_RULE",
    "MAX_NOTE",
    "PERIODS",
    "THIS_PERIOD",
    "JobPlan",
    "check_label",
    "check_scope",
    "plan_job",
    "program_name",
]

# A label: 1 to 64 of these, e.g. ``client/acme`` or ``ci:render-nightly``.
LABEL_RULE = re.compile(r"[A-Za-z0-9_.:/-]{1,64}")
# A budget's periods: calendar ones, in local time.
PERIODS = ("day", "week", "month")
# Each period as the one under way.
THIS_PERIOD = {"day": "today", "week": "this week", "month": "this month"}
# The longest note kept with a job, in characters.
MAX_NOTE = 1000


def check_label(label: object) -> str | None:
    """``label`` if it follows ``LABEL_RULE`` (or is ``None``), else ``ConfigurationError``."""
    if label is None:
        return None
    if not isinstance(label, str) or LABEL_RULE.fullmatch(label) is None:
        shown = repr(label) if isinstance(label, str) else type(label).__name__
        raise ConfigurationError(
            "label must be 1 to 64 of the letters A-Z and a-z, the digits and _ . : / - "
            f"(such as client/acme), not {shown}."
        )
    return label


def check_scope(organization: str | None, all_organizations: bool) -> None:
    """An organization or every one, not both (``track_spend()``, ``measure``, the history's
    readers)."""
    if all_organizations and organization is not None:
        raise ConfigurationError(
            "Pass an organization or all_organizations=True, not both.",
            cli_message="--org and --all exclude each other.",
        )


def _check_period(per: object) -> str:
    if per not in PERIODS:
        raise ConfigurationError(f"per must be 'day', 'week' or 'month', not {per!r}.")
    return str(per)


def _check_note(note: object) -> str | None:
    if note is None:
        return None
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        raise ConfigurationError(
            f"note must be text of at most {MAX_NOTE} characters.",
            cli_message=f"--note must be at most {MAX_NOTE} characters.",
        )
    return note


def program_name(argv0: str | None = None) -> str:
    """The name of a program, never its arguments: ``argv0``'s last part, else this Python
    program's (``python`` for ``python -c``, the package's for ``python -m package``)."""
    path = argv0 if argv0 is not None else (sys.argv[0] if sys.argv else "")
    name = os.path.basename(path.rstrip("/"))
    if name == "__main__.py":
        name = os.path.basename(os.path.dirname(path)) or name
    return name if name and name not in {"-c", "-m", "-"} else "python"


@dataclass(frozen=True, slots=True)
class JobPlan:
    """What a job is to be recorded with, checked (``plan_job``)."""

    label: str | None = None
    note: str | None = None
    expected: float | None = None
    budget: float | None = None
    per: str = "month"
    program: str = "python"

    @property
    def asks_for_the_ledger(self) -> bool:
        """Whether anything given is for the ledger (a label, note, expected cost or budget)."""
        return any(v is not None for v in (self.label, self.note, self.expected, self.budget))


def plan_job(
    *,
    label: object = None,
    budget: object = None,
    per: object = "month",
    note: object = None,
    expected: object = None,
    program: str | None = None,
) -> JobPlan:
    """The job ``track_spend()`` or ``measure`` was asked for, every value checked before
    anything is read: ``ConfigurationError`` for one that breaks its rule.

    ``expected`` is the job's expected cost in credits: what a budget adds to the label's spend
    so far, and what splits an overlap. ``program`` defaults to this program's name.
    """
    checked_label = check_label(label)
    period = _check_period(per)
    limit = None if budget is None else check_credits(budget, "budget")
    if limit is not None and checked_label is None:
        raise ConfigurationError(
            "A budget is per label: pass label= with budget=.",
            cli_message="--budget needs --label: a budget is per label.",
        )
    return JobPlan(
        label=checked_label,
        note=_check_note(note),
        expected=None if expected is None else check_credits(expected, "expected"),
        budget=limit,
        per=period,
        program=program_name() if program is None else program_name(program),
    )
