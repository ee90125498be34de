"""The refresh ``stability-user status`` starts behind a prompt, in a detached process.

``start()`` (in ``status``) spawns ``python -m stability_user._cli._background`` (through
``nice -n 19``, where there is one) in a session of its own, at the lowest priority,
stdin, stdout and stderr on the null device (nothing it does can reach a terminal, and a
prompt's ``$(...)`` does not wait for it), holding the entry's lock, which ``status`` took and
hands over as descriptor 3: one refresh per entry at a time, across every shell, for as long as
this process lives. Its arguments are the options ``status`` was given; the key, as every
setting, comes from the environment it inherits, so no ``ps`` shows it. It asks the API within
``--timeout`` and writes what came of it (the value, or the failure that starts the back-off),
then ends; an alarm kills it 5 s after its timeout, whatever it is doing. ``status`` exits at
once, so the process is reparented and reaped by init: no zombie is left behind.
"""

from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    from ._status_options import StatusArguments

__all__ = ["LOCK_DESCRIPTOR", "main", "start", "started"]

# Where the child finds the entry's lock.
LOCK_DESCRIPTOR = 3
# The hard stop past --timeout; the grace the entry allows (_cache_policy.ATTEMPT_GRACE) is longer.
_KILL_AFTER = 5


# Whether this process has started a refresh: then the program ends at once after its output
# (``_cli.run``), rather than tearing the interpreter down while the refresh starts beside it.
started = False

# The refresh runs at the lowest priority (nice 19), set by nice(1) before Python starts: the
# prompt's own run, still finishing when its refresh starts, keeps the CPU, and the refresh never
# slows what the user is doing. Spawned (vfork and exec), not forked: a forked child waiting for
# the CPU would leave the prompt's run paying a page copy for every page it touches meanwhile.
_NICE = ("/usr/bin/nice", "/bin/nice")


def start(lock_descriptor: int, args: argparse.Namespace | StatusArguments) -> bool:
    """Spawn the refresh, handing it the lock; whether it could be started."""
    argv = [sys.executable, "-m", __name__, "--timeout", repr(args.timeout)]
    for option, value in (
        ("--org", args.org),
        ("--base-url", args.base_url),
        ("--api-version", args.api_version),
    ):
        if value:
            argv += [f"{option}={value}"]
    if args.no_history:
        argv.append("--no-history")
    nice = next((path for path in _NICE if os.path.exists(path)), None)
    if nice is not None:
        argv = [nice, "-n", "19", *argv]
    try:
        if lock_descriptor == LOCK_DESCRIPTOR:  # dup2 onto itself would keep close-on-exec
            os.set_inheritable(lock_descriptor, True)
        os.posix_spawn(
            argv[0],
            argv,
            os.environ,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_DUP2, 1, 2),
                (os.POSIX_SPAWN_DUP2, lock_descriptor, LOCK_DESCRIPTOR),
            ],
            setsid=True,
        )
    except (OSError, AttributeError, NotImplementedError, ValueError, TypeError):
        # No posix_spawn (Windows), no setsid, an empty sys.executable, a sandbox that forbids
        # new processes: the caller refreshes in the foreground instead.
        return False
    global started
    started = True
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """The refresh process: ``python -m stability_user._cli._background [options]``."""
    import signal

    from ._status_options import read_arguments

    args = read_arguments(list(sys.argv[1:] if argv is None else argv))
    if args is None:
        return 2
    if hasattr(signal, "alarm"):  # the hard stop: SIGALRM's default action ends the process
        signal.alarm(int(args.timeout) + 1 + _KILL_AFTER)
    os.closerange(LOCK_DESCRIPTOR + 1, _highest_descriptor())  # nothing else a shell left open
    return _refresh(args)


def _highest_descriptor() -> int:
    try:
        return os.sysconf("SC_OPEN_MAX")
    except (OSError, ValueError):
        return 1024


def _refresh(args: StatusArguments) -> int:
    from .._cache._policy import current, refresh_held
    from .._cache._store import default_cache_dir, open_cache
    from .._exceptions import ConfigurationError, StabilityError
    from ._status_options import entry_of, fetch_credits

    deadline = time.monotonic() + args.timeout
    organization, name = entry_of(args)
    try:
        cache = open_cache(default_cache_dir(os.environ))
    except OSError:
        return 1
    if not _holds_the_lock(cache.lock_path(name)):
        return 1  # descriptor 3 is not this entry's lock: write nothing
    now = time.time()
    older = current(cache, name, now)
    try:
        record = refresh_held(
            cache,
            name,
            organization,
            older,
            fetch=lambda by: fetch_credits(args, organization, by),
            deadline=deadline,
        )
    except ConfigurationError as error:
        # Remembered, so that the prompt says it; the foreground never remembers one (the
        # settings are the caller's), and status tries again at once once they are fixed.
        from .._cache._policy import failure_entry

        line = f"{error.cli_message or error}"  # in the command line's terms
        cache.write(name, failure_entry(older, error, time.time(), line=line))
        return 2
    except StabilityError:
        return 1  # written down by refresh_held
    return 1 if record.stale else 0  # a failure beside an older value: written down too


def _holds_the_lock(path: str) -> bool:
    """Whether descriptor 3 is the lock file at ``path`` (``status`` locked it before it
    handed it over)."""
    try:
        held, there = os.fstat(LOCK_DESCRIPTOR), os.stat(path)
    except OSError:
        return False
    return (held.st_dev, held.st_ino) == (there.st_dev, there.st_ino)


if __name__ == "__main__":
    sys.exit(main())
