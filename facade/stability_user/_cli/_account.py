"""``stability-user account``: the account behind the key, with its organizations."""

from __future__ import annotations

import json

from .._text import printable
from ._arguments import add_command, client_options
from ._output import EXIT_OK, Output, table

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

    from .._models import Account

__all__ = ["add_parser", "run", "show_account"]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    add_command(
        commands,
        "account",
        help="the account behind the key, with its organizations",
        description="Show the account behind the key, with its organizations.",
    )


def run(args: argparse.Namespace, out: Output, err: Output) -> int:
    from .._client import StabilityUser

    with StabilityUser(**client_options(args, err)) as client:
        show_account(out, client.get_account(), args.json)
    return EXIT_OK


def show_account(out: Output, account: Account, as_json: bool) -> None:
    if as_json:
        out.print(json.dumps(account.to_dict(), indent=2))
        return
    out.print(f"{out.bold('Account')}  {printable(account.id)}")
    out.print(f"{out.bold('Email')}    {printable(account.email)}")
    if account.profile_picture:
        out.print(f"{out.bold('Picture')}  {printable(account.profile_picture)}")
    out.print()
    rows = [
        [
            printable(org.id),
            printable(org.name),
            printable(org.role),
            "yes" if org.is_default else "",
        ]
        for org in account.organizations
    ]
    table(out, ["ORGANIZATION", "NAME", "ROLE", "DEFAULT"], rows)
