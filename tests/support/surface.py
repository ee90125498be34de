"""The public surface of ``stability_user``, written out as plain data: what a user can import,
call, type on the command line and pickle. ``tests/test_public_surface.py`` compares it with
``tests/public_surface.json``; ``python tests/support/surface.py > tests/public_surface.json``
writes it again after a change to the surface made on purpose.

Read from the objects themselves (``__all__``, signatures, the argparse tree, pickles), so an
internal move that changes none of them leaves the file as it is.
"""

from __future__ import annotations

import argparse
import enum
import importlib
import inspect
import io
import json
import pickle
import re
import sys
from pathlib import Path
from typing import Any

__all__ = ["PUBLIC_MODULES", "surface"]

PUBLIC_MODULES = (
    "stability_user",
    "stability_user.history",
    "stability_user.mcp",
    "stability_user.monitoring",
    "stability_user.prices",
    "stability_user.testing",
)
ROOT = Path(__file__).resolve().parents[2]


def _signature(value: Any) -> str | None:
    try:
        text = str(inspect.signature(value))
    except (TypeError, ValueError):
        return None
    return re.sub(r" at 0x[0-9a-f]+>", ">", text)  # a default's address changes every run


def _members(cls: type) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, member in sorted(vars(cls).items()):
        if name.startswith("_") and name not in {"__init__", "__call__", "__enter__", "__exit__"}:
            continue
        if isinstance(member, property):
            found[name] = "property"
        elif isinstance(member, classmethod | staticmethod):
            found[name] = f"{type(member).__name__}{_signature(member.__func__)}"
        elif inspect.isfunction(member):
            kind = "async def" if inspect.iscoroutinefunction(member) else "def"
            found[name] = f"{kind}{_signature(member)}"
        elif not callable(member) and not name.startswith("_"):
            found[name] = f"attribute {type(member).__name__}"
    return found


def _describe(value: Any) -> dict[str, Any]:
    if inspect.isclass(value):
        return {
            "kind": "class",
            "bases": [f"{base.__module__}.{base.__qualname__}" for base in value.__bases__],
            "signature": _signature(value),
            "members": _members(value),
        }
    if inspect.isfunction(value) or inspect.isbuiltin(value):
        kind = "async function" if inspect.iscoroutinefunction(value) else "function"
        return {"kind": kind, "signature": _signature(value)}
    if isinstance(value, enum.Enum | str | int | float | bool | type(None)):
        return {"kind": "value", "repr": repr(value)}
    return {"kind": type(value).__name__}


def _modules() -> dict[str, Any]:
    found = {}
    for name in PUBLIC_MODULES:
        module = importlib.import_module(name)
        found[name] = {
            "__all__": list(module.__all__),
            "names": {item: _describe(getattr(module, item)) for item in module.__all__},
        }
    return found


def _command_line() -> dict[str, Any]:
    from stability_user._cli._parser import build_parser, status_parser

    def parser_of(parser: argparse.ArgumentParser) -> dict[str, Any]:
        options: list[dict[str, Any]] = []
        commands: dict[str, Any] = {}
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    commands[name] = parser_of(sub)
                continue
            options.append(
                {
                    "flags": list(action.option_strings),
                    "dest": action.dest,
                    "action": type(action).__name__,
                    "nargs": action.nargs,
                    "default": repr(action.default),
                    "choices": None if action.choices is None else [str(c) for c in action.choices],
                    "required": action.required,
                    "metavar": None if action.metavar is None else str(action.metavar),
                    "help": action.help,
                }
            )
        return {
            "description": parser.description,
            "epilog": parser.epilog,
            "options": options,
            "commands": commands,
        }

    return {"stability-user": parser_of(build_parser()), "status": parser_of(status_parser())}


def _samples() -> dict[str, Any]:
    """One object of each public class a user may pickle (values, records, errors)."""
    from datetime import UTC, date, datetime

    import httpx2

    import stability_user as su
    from stability_user import history, prices

    request = httpx2.Request("GET", "https://api.stability.ai/v1/user/balance")
    response = httpx2.Response(429, request=request, json={"name": "rate_limited"})
    organization = su.Organization(id="org-1", name="Lab", role="OWNER", is_default=True)
    balance = su.Balance(credits=12.5)
    moment = datetime(2026, 1, 2, tzinfo=UTC)
    day = history.Day(date=date(2026, 1, 1), spent=1.0, added=0.0, closing=10.0, readings=2)
    rate = history.BurnRate(
        credits_per_day=1.0, spent=7.0, since=moment, until=moment, coverage=1.0, readings=8
    )
    runway = history.Runway(credits=10.0, runs_out=moment, days=10.0)
    audio = prices.Price(
        name="stable-audio-2",
        credits=23.0,
        method="POST",
        path="/v2beta/audio/stable-audio-2/text-to-audio",
        model="stable-audio-2",
        formula=prices.Formula(base=17.0, rate=0.06, parameter="steps", default=50),
        parameter_value=100,
        source="stability-v2beta.openapi.json",
        stated="By default, 20 credits per successful generation.",
    )
    estimate = prices.Estimate(
        lines=(prices.EstimateLine("stable-audio-2", 2, 23.0, 46.0, audio),), total=46.0
    )
    document = prices.Document("stability-v2beta.openapi.json", None, "2026-12-07", "e8db")
    job = history.Job(
        id=1,
        label="a",
        organization="org-1",
        name="Lab",
        account="0" * 64,
        started_at=moment,
        ended_at=moment,
        before=10.0,
        after=8.5,
        spent=1.5,
        exit_status=0,
        raised=None,
        program="render",
        note=None,
        expected=None,
        overlaps=(),
        attributed=1.5,
        estimated=False,
    )
    return {
        "Account": su.Account(id="u-1", email="a@example.com", organizations=(organization,)),
        "Organization": organization,
        "Balance": balance,
        "OrganizationBalance": su.OrganizationBalance(organization=organization, balance=balance),
        "RateLimit": su.RateLimit(150, 10.0),
        "CachedBalance": su.CachedBalance(12.5, None, 1.0, 2.0, stale=False),
        "ConfigurationError": su.ConfigurationError("bad", cli_message="bad!"),
        "MissingAPIKeyError": su.MissingAPIKeyError("none"),
        "APIConnectionError": su.APIConnectionError("down", request=request),
        "RateLimitError": su.RateLimitError(
            "slow down", response=response, error_id="e-1", error_name="rate_limited"
        ),
        "InsufficientCreditsError": su.InsufficientCreditsError(
            "short", required=2.0, available=1.0, organization=None
        ),
        "InsufficientCreditsError (for an estimate)": su.InsufficientCreditsError(
            "short", required=46.0, available=1.0, organization=None, estimate=estimate
        ),
        "ClientClosedError": su.ClientClosedError("closed"),
        "prices.Price": audio,
        "prices.Estimate": estimate,
        "prices.Catalogue": prices.Catalogue(
            prices=(audio,),
            not_priced=(prices.Unpriced("GET", "/v2beta/results/{id}", "no Credits section"),),
            document=document,
            overrides=None,
        ),
        "BudgetExceededError": su.BudgetExceededError(
            "over", label="a", budget=5.0, spent=6.0, per="month", expected=None, organization=None
        ),
        "history.Day": day,
        "history.BurnRate": rate,
        "history.Runway": runway,
        "history.Job": job,
        "history.JobTotal": history.JobTotal(
            by=("label", "month"),
            label="a",
            month="2026-01",
            jobs=1,
            spent=1.5,
            unknown=0,
            overlapping=0.0,
            estimated=0.0,
        ),
        "history.OrganizationHistory": history.OrganizationHistory(
            organization="org-1",
            name="Lab",
            days=(day,),
            credits=10.0,
            read_at=moment,
            burn_rate=rate,
            runway=runway,
            too_little=None,
        ),
    }


def _same(copy: Any, sample: Any) -> bool:
    if type(copy) is not type(sample):
        return False
    if isinstance(sample, BaseException):
        return copy.args == sample.args and sorted(vars(copy)) == sorted(vars(sample))
    slots = getattr(type(sample), "__slots__", ())
    if slots and not hasattr(sample, "__dataclass_fields__"):
        return all(getattr(copy, name) == getattr(sample, name) for name in slots)
    return bool(copy == sample)


class _Recording(pickle.Unpickler):
    """An unpickler that notes every global a pickle names (module and qualified name)."""

    def __init__(self, data: bytes) -> None:
        super().__init__(io.BytesIO(data))
        self.named: set[str] = set()

    def find_class(self, module: str, name: str) -> Any:
        self.named.add(f"{module}.{name}")
        return super().find_class(module, name)


def _pickles() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, sample in _samples().items():
        data = pickle.dumps(sample, protocol=pickle.HIGHEST_PROTOCOL)
        reader = _Recording(data)
        copy = reader.load()
        ours = sorted(named for named in reader.named if named.startswith("stability_user"))
        found[name] = {"round trip": _same(copy, sample), "names": ours}
    return found


def _runnable(name: str) -> bool:
    folders = importlib.import_module(name).__spec__.submodule_search_locations or []
    return any((Path(folder) / "__main__.py").is_file() for folder in folders)


def _entry_points() -> dict[str, Any]:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {
        "scripts": project["scripts"],
        "optional-dependencies": sorted(project["optional-dependencies"]),
        "python -m": [name for name in PUBLIC_MODULES if _runnable(name)],
    }


def surface() -> dict[str, Any]:
    """The whole public surface as JSON-ready data."""
    return {
        "modules": _modules(),
        "command line": _command_line(),
        "pickles": _pickles(),
        "entry points": _entry_points(),
    }


if __name__ == "__main__":
    json.dump(surface(), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
