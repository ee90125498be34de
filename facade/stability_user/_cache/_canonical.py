"""One spelling of a key, a base URL and an API version: the one the client resolves them to.

Shared by the client's settings (``_config``) and by the balance cache, which names an entry on
every prompt without loading the client: ``Bearer sk-1`` and ``sk-1``, or
``HTTPS://API.stability.ai/`` and ``https://api.stability.ai``, are one entry, so ``status`` and
``cached_balance()`` share one refresh. Standard library only; a base URL out of the ordinary
(upper case, a default port, a dot segment, non-ASCII) is spelt by httpx2, as the client would.
"""

from __future__ import annotations

__all__ = ["api_version_name", "bare_key", "base_url"]

_HOST_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-.")
_PATH_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def bare_key(raw: str) -> str:
    """The key without surrounding whitespace or a ``Bearer`` prefix (pasted from a curl line:
    the prefix is the SDK's to write)."""
    key = raw.strip()
    scheme, _, rest = key.partition(" ")
    return rest.strip() if scheme.lower() == "bearer" else key


def api_version_name(raw: str) -> str:
    """An API version's name as the version table has it (``v1``)."""
    return raw.strip().lower()


def base_url(raw: str) -> str:
    """The base URL as the client sends to it: httpx2's spelling, without a trailing slash.

    A URL httpx2 cannot read is returned stripped: the client refuses it when it is made.
    """
    text = raw.strip()
    scheme, separator, rest = text.partition("://")
    authority, _, path = rest.partition("/")
    path = path.rstrip("/")
    if separator and scheme in _DEFAULT_PORTS and _plain(authority, path, scheme):
        return f"{scheme}://{authority}/{path}" if path else f"{scheme}://{authority}"
    import httpx2

    try:
        return str(httpx2.URL(text)).rstrip("/")
    except httpx2.InvalidURL:
        return text


def _plain(authority: str, path: str, scheme: str) -> bool:
    """Whether httpx2 would write ``authority`` and ``path`` as they are: a lower-case name
    or IPv4 address, a port that is not the scheme's default, plain path segments."""
    host, colon, port = authority.partition(":")
    if not host or not set(host) <= _HOST_CHARACTERS or ".." in host:
        return False
    if host[0] in ".-" or host[-1] in ".-":
        return False
    if colon and not (port.isdigit() and port.isascii() and port[0] != "0"):
        return False
    if port == _DEFAULT_PORTS[scheme]:
        return False
    return not path or all(
        segment not in ("", ".", "..") and set(segment) <= _PATH_CHARACTERS
        for segment in path.split("/")
    )
