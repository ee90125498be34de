"""The whole command line: the top-level parser, each command's sub-parser registered from here.

Each command module adds its own sub-parser (``add_parser``) with the shared options of
``_arguments``; this module imports the commands and nothing imports it back (``_cli`` loads it
only to parse). ``stability-user status`` builds only its own (``status_parser``), so a prompt
pays for one command's arguments, not seven.
"""

from __future__ import annotations

import argparse

from .._constants import API_KEY_ENV
from .._version import __version__
from ._output import PROG

__all__ = ["build_parser", "status_parser"]

_EPILOG = f"""\
The API key is read from {API_KEY_ENV} only: a key on the command line would leak into
shell history and process lists. STABILITY_BASE_URL (or API_HOST), STABILITY_API_VERSION,
STABILITY_ORGANIZATION, STABILITY_CLIENT_ID and STABILITY_CLIENT_VERSION are read too. The
balances read are recorded in a local history (STABILITY_STATE_DIR; STABILITY_HISTORY=off or
--no-history turns that off): see `{PROG} history`.

examples:
  {PROG} account
  {PROG} balance --org org-123456
  {PROG} balances --json
  {PROG} balances --min-credits 50 || echo "top up before the batch runs"
  {PROG} status                        # for a prompt: cached, one short line
  {PROG} history --days 30             # spend per day, burn rate, runway
  {PROG} watch --below 50 --notify-config ~/.config/apprise.yml   # alerts
  {PROG} measure --min-credits 50 -- ./batch.sh   # what a job spent
  {PROG} prices                        # what each call costs, from Stability's document
  {PROG} estimate 100 ultra 20 core    # what a batch costs, against the balance
  {PROG} measure --label nightly --budget 300 -- ./batch.sh   # a label's monthly budget
  {PROG} jobs --by label,month --csv   # who spent it, for finance
  {PROG} exporter --port 9464 --interval 60   # Prometheus metrics
  {PROG} mcp                           # the credits for agents (MCP, over stdio)

exit status:
  0  success (watch --once: all is well)
  1  API or network failure (one line on stderr)
  2  usage or configuration error, including a missing {API_KEY_ENV}
  3  a balance is below --min-credits, or measure --budget would be passed (watch --once: a
     condition holds; estimate: the balance does not cover the plan)
  4  watch --once: the alerts' state could not be saved (a notice may be sent again)
  measure exits with its command's status
  130  interrupted (Ctrl-C)
"""


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, every command's sub-parser included."""
    from . import (
        _account,
        _balance,
        _balances,
        _estimate,
        _exporter,
        _history,
        _jobs,
        _mcp,
        _measure,
        _prices,
        _status,
        _watch,
    )

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Check a Stability AI account and its credits from a shell.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (
        _account,
        _balance,
        _balances,
        _status,
        _history,
        _watch,
        _measure,
        _prices,
        _estimate,
        _jobs,
        _exporter,
        _mcp,
    ):
        command.add_parser(commands)
    return parser


def status_parser() -> argparse.ArgumentParser:
    """``stability-user status`` alone, as the whole parser would read it."""
    from . import _status

    parser = argparse.ArgumentParser(prog=f"{PROG} status", **_status.PARSER_TEXT)
    _status.add_arguments(parser)
    return parser
