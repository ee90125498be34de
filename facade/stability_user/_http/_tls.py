"""Which certificate authorities a client trusts: the operating system's, or the ones named.

httpx2 verifies against the operating system's trust store; ``SSL_CERT_FILE`` (a PEM bundle)
or ``SSL_CERT_DIR`` (a folder hashed by ``openssl rehash``) replaces that store, the file
first when both are set. httpx2 itself reads the two only when ``trust_env`` is on, which this
SDK turns off for a loopback base URL (so that an environment proxy never sees the key), and
its releases before 2.16 read them whatever ``trust_env`` says. Read here, once per client,
they mean the same on every supported httpx2 and for every host: trusting a certificate
authority is not sending the key anywhere.
"""

from __future__ import annotations

import functools
import os
import ssl
from collections.abc import Mapping

from .._constants import SSL_CERT_DIR_ENV, SSL_CERT_FILE_ENV
from .._exceptions import ConfigurationError

__all__ = ["default_trust", "trust_from_env"]


def trust_from_env(environ: Mapping[str, str]) -> ssl.SSLContext | None:
    """A context trusting what ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` name; ``None``: neither set.

    Raises:
        ConfigurationError: The variable names nothing OpenSSL can load.
    """
    cafile = environ.get(SSL_CERT_FILE_ENV)
    if cafile:
        try:
            stat = os.stat(cafile)
            return _loaded(cafile, None, (stat.st_mtime_ns, stat.st_size, stat.st_ino))
        except (OSError, ssl.SSLError) as err:
            raise ConfigurationError(
                f"{SSL_CERT_FILE_ENV}={cafile!r} is not a PEM bundle that can be loaded: {err}"
            ) from err
    capath = environ.get(SSL_CERT_DIR_ENV)
    if capath:
        # OpenSSL reads the folder lazily, at each handshake: a wrong name would only show
        # later as an unverifiable certificate.
        if not os.path.isdir(capath):
            raise ConfigurationError(f"{SSL_CERT_DIR_ENV}={capath!r} is not a folder.")
        return _loaded(None, capath, None)
    return None


# Loading a bundle costs about 20 ms and 0.8 MiB each time: a process with a thousand clients
# (the exporter, one per target) would pay that a thousand times. A context is safe to share
# between pools and threads, and every pool sets it up alike (the same ALPN). A bundle file is
# loaded again when it changes (its modification time, size or inode).
@functools.lru_cache(maxsize=8)
def _loaded(
    cafile: str | None, capath: str | None, version: tuple[int, int, int] | None
) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=cafile, capath=capath)


@functools.cache
def default_trust() -> ssl.SSLContext:
    """The operating system's trust store as httpx2 loads it, once per process (see
    ``_loaded``), for every pool that names no other."""
    import httpx2

    return httpx2.create_ssl_context()
