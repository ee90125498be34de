"""Where ``stability-user watch`` sends its notices: Apprise's services, each on its own.

Apprise (the ``alerts`` extra) reaches 100+ services by URL (Slack, Discord, Teams, Telegram,
Matrix, ntfy, e-mail, webhooks). The URLs come from ``--notify``, an Apprise configuration file
(TEXT or YAML, tags included) and ``STABILITY_NOTIFY_URLS``; each is checked before anything is
read or sent. A URL carries secrets (tokens, passwords, and for some services its path, its
query or even its host), so it is shown only as ``shown_url`` makes it, its scheme, its host
when that is a network address, and a short keyed digest of the whole, and stored only as a
digest: each target is sent to, and remembered, on its own, so one that fails is retried alone.
A delivery has a total deadline: a service that answers a byte at a time is given up on.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._exceptions import ConfigurationError

__all__ = [
    "ALERTS_INSTALL",
    "CONFIG_MAX_BYTES",
    "NOTIFY_URLS_ENV",
    "Delivery",
    "Target",
    "digest_key",
    "given_up",
    "load_targets",
    "shown_url",
]

ALERTS_INSTALL = "pip install 'stability-user[alerts]'"
NOTIFY_URLS_ENV = "STABILITY_NOTIFY_URLS"
# The largest --notify-config read: far more than any list of URLs takes.
CONFIG_MAX_BYTES = 1024 * 1024
_DIGEST_KEY_FILE = "notify-digest.key"
# A host name worth showing: one with a dot (not a token or a topic, which some services put
# where a host would be).
_DOTTED_NAME = re.compile(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")


@dataclass(frozen=True, slots=True)
class Delivery:
    """What came of sending one notice to one target: ``error`` is the service's own words."""

    target: str
    ok: bool
    error: str | None = None


def shown_url(server: Any, key: bytes) -> str:
    """How a target's URL is shown, wherever one is printed: its scheme, its host when that is
    a network address (with its port), and a short digest of the whole URL keyed with ``key``
    (so that two URLs of one host are told apart, and a digest in a log cannot be used to guess
    a secret): ``json://hooks.example.com:8080 (3fa9c2d1)``, ``slack://… (77b0e4a5)``."""
    import hashlib
    import hmac

    scheme = str(server.url(privacy=True)).partition("://")[0]
    host = getattr(server, "host", None)
    where = "…"
    if isinstance(host, str) and _network_host(host):
        port = getattr(server, "port", None)
        where = f"{host}:{port}" if isinstance(port, int) else host
    digest = hmac.new(key, str(server.url()).encode(), hashlib.sha256).hexdigest()[:8]
    return f"{scheme}://{where} ({digest})"


def _network_host(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host == "localhost" or _DOTTED_NAME.fullmatch(host) is not None
    return True


def digest_key(directory: str) -> bytes:
    """The key ``shown_url`` digests with: kept in the state folder, so that a URL shows the
    same from run to run; this process's own when the folder cannot be used."""
    from .._cache._store import private_directory
    from .._files import read_regular_file

    try:
        private_directory(directory, "state directory")
        path = os.path.join(directory, _DIGEST_KEY_FILE)
        if not os.path.exists(path):
            _publish(path, os.urandom(32))
        data = read_regular_file(path, 64)
        if len(data) == 32:
            return data
    except OSError:
        pass
    return _PROCESS_KEY


_PROCESS_KEY = os.urandom(32)


def _publish(path: str, data: bytes) -> None:
    """Write ``data`` at ``path`` whole or not at all, unless a file is there already."""
    temporary = f"{path}.{os.getpid()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    descriptor = os.open(temporary, flags, 0o600)
    try:
        os.write(descriptor, data)
    finally:
        os.close(descriptor)
    try:
        os.link(temporary, path)  # no clobbering a key another process made meanwhile
    except FileExistsError:
        pass
    finally:
        os.unlink(temporary)


# The deliveries given up on: Apprise may run one on a worker thread of its own pool, which an
# interpreter's exit would wait for (``given_up``).
_GIVEN_UP: list[threading.Thread] = []


def given_up() -> bool:
    """Whether a delivery given up on is still under way: the process ends without waiting for
    it (``_cli.run``), as the service did not answer in time."""
    return any(thread.is_alive() for thread in _GIVEN_UP)


class Target:
    """One service to notify: ``shown`` is its URL as ``shown_url`` shows it, ``id`` a digest
    of the whole URL (the alert state's name for it)."""

    __slots__ = ("_sending", "_server", "id", "shown")

    def __init__(self, server: Any, key: bytes) -> None:
        from .._cache._store import _sha256

        self._server = server
        self._sending: threading.Thread | None = None
        self.shown: str = shown_url(server, key)
        self.id: str = _sha256(server.url().encode()).hexdigest()[:32]

    def send(self, title: str, body: str, kind: str, deadline: float) -> Delivery:
        """Send a notice (``kind``: ``info``, ``warning``, ``failure``, ``success``), giving up
        after ``deadline`` seconds (the delivery goes on behind, and the target is not sent to
        again until it has ended)."""
        if self._sending is not None and self._sending.is_alive():
            return Delivery(self.shown, False, "the notice before is still being sent")
        outcome: list[Delivery] = []
        thread = threading.Thread(
            target=lambda: outcome.append(self._send(title, body, kind)),
            name="stability-user-notify",
            daemon=True,  # an exit does not wait for a service that never answers
        )
        thread.start()
        thread.join(deadline)
        if thread.is_alive():
            self._sending = thread
            _GIVEN_UP.append(thread)
            return Delivery(self.shown, False, f"no answer within {deadline:g} s")
        return outcome[0] if outcome else Delivery(self.shown, False, "the sending failed")

    def _send(self, title: str, body: str, kind: str) -> Delivery:
        import apprise

        one = apprise.Apprise()
        one.add(self._server)
        try:
            result = one.notify(body, title=title, notify_type=kind, body_format="text")
        except Exception as error:  # a service's own failure, in its words
            return Delivery(self.shown, False, f"{type(error).__name__}: {error}")
        if result:
            return Delivery(self.shown, True)
        words = [
            entry.message
            for outcome in result.results
            for entry in outcome.logs()
            if entry.level in ("WARNING", "ERROR")
        ]
        return Delivery(self.shown, False, "; ".join(words) or "the service did not take it")


def load_targets(
    urls: Sequence[str],
    config_file: str | None,
    environ: Mapping[str, str],
    tags: Sequence[str],
    state_dir: str,
) -> list[Target]:
    """The targets asked for, in order, each checked: every URL of ``urls`` and the
    environment, and the configuration file's entries (those with one of ``tags``, when
    given: tags are the file's). Once all are checked, shown with the digest key kept in
    ``state_dir`` (``digest_key``).

    Raises:
        ConfigurationError: Apprise is not installed, a URL's scheme is unknown or the URL
            malformed, or the configuration file cannot be read or holds no URL. The message
            never shows a URL past its scheme.
    """
    try:
        import apprise
    except ImportError:
        message = f"watch needs Apprise: {ALERTS_INSTALL}"
        raise ConfigurationError(message, cli_message=message) from None
    servers = []
    listed = [*urls, *environ.get(NOTIFY_URLS_ENV, "").replace(",", " ").split()]
    for url in listed:
        server = apprise.Apprise.instantiate(url)
        if server is None:
            scheme = url.partition("://")[0] if "://" in url else "(no scheme)"
            message = (
                f"not a URL Apprise can send to: {scheme}://... (an unknown scheme, or a URL "
                "malformed for its service)"
            )
            raise ConfigurationError(message, cli_message=f"--notify: {message}")
        servers.append(server)
    if config_file is not None:
        config = apprise.AppriseConfig()
        config.add_config(_config_text(config_file))
        entries = apprise.Apprise()
        entries.add(config)
        if not list(entries.find("all")):
            message = f"{config_file}: no Apprise URL could be read from it"
            raise ConfigurationError(message, cli_message=f"--notify-config {message}")
        servers.extend(entries.find(tag=list(tags)) if tags else entries.find("all"))
    key = digest_key(state_dir) if servers else _PROCESS_KEY
    return [Target(server, key) for server in servers]


def _config_text(path: str) -> str:
    """The configuration file's text: a regular file, opened without waiting (a FIFO is
    refused, never waited on), of at most ``CONFIG_MAX_BYTES``."""
    from .._files import read_regular_file

    try:
        data = read_regular_file(path, CONFIG_MAX_BYTES)
    except OSError as error:
        reason = error.strerror or str(error).removeprefix(f"{path} ")
        message = f"{path}: {reason}"
        raise ConfigurationError(message, cli_message=f"--notify-config {message}") from error
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        message = f"{path}: not UTF-8 text"
        raise ConfigurationError(message, cli_message=f"--notify-config {message}") from error
