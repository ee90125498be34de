"""Every configuration error, to the letter: for Python callers and for the command line.

A ``ConfigurationError`` says what is wrong in the caller's terms: Python arguments in its
message, options and environment variables in its ``cli_message``.
"""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from stability_user import ConfigurationError, MissingAPIKeyError, StabilityUser
from stability_user._config import resolve_settings

pytestmark = pytest.mark.timeout(10)

BASE = {
    "api_key": "k-123456789",
    "organization": None,
    "base_url": None,
    "timeout": 5,
    "max_retries": 2,
    "allow_insecure_http": False,
}
REFUSE_HTTP = (
    "Refusing to send the API key over plain http:// to 'api.example.com'; use https://, or "
    "pass allow_insecure_http=True if you really mean it."
)
CASES: list[tuple[dict[str, Any], str, str | None]] = [
    (
        {"api_key": None},
        "No API key: pass api_key=... or set the STABILITY_API_KEY environment variable.",
        "STABILITY_API_KEY is not set: set it to your Stability API key.",
    ),
    (
        {"api_key": "  "},
        "The API key is empty: pass api_key=... or set STABILITY_API_KEY to your key.",
        "STABILITY_API_KEY is empty: set it to your Stability API key.",
    ),
    (
        {"api_key": "Bearer "},
        "The API key is empty: pass api_key=... or set STABILITY_API_KEY to your key.",
        "STABILITY_API_KEY is empty: set it to your Stability API key.",
    ),
    (
        {"api_key": "two words"},
        "The API key holds whitespace, control or non-ASCII characters; check how it was copied.",
        "STABILITY_API_KEY holds whitespace, control or non-ASCII characters; check how the key "
        "was copied.",
    ),
    ({"api_key": 12}, "api_key must be a str, not int.", None),
    (
        {"organization": " "},
        "organization is empty; pass None for the default organization.",
        "--org (or STABILITY_ORGANIZATION) is empty.",
    ),
    (
        {"organization": "org "},
        "organization 'org ' has leading or trailing whitespace.",
        "--org (or STABILITY_ORGANIZATION) 'org ' has leading or trailing whitespace.",
    ),
    (
        {"organization": "org\x01"},
        "organization 'org\\x01' holds control or non-ASCII characters.",
        "--org (or STABILITY_ORGANIZATION) 'org\\x01' holds control or non-ASCII characters.",
    ),
    ({"organization": 5}, "organization must be a str, not int.", None),
    (
        {"client_id": ""},
        "client_id is empty; pass None to send none.",
        "STABILITY_CLIENT_ID is empty.",
    ),
    (
        {"client_id": "\tplugin"},
        "client_id '\\tplugin' has leading or trailing whitespace.",
        "STABILITY_CLIENT_ID '\\tplugin' has leading or trailing whitespace.",
    ),
    (
        {"client_version": "1.0\n"},
        "client_version '1.0\\n' has leading or trailing whitespace.",
        "STABILITY_CLIENT_VERSION '1.0\\n' has leading or trailing whitespace.",
    ),
    (
        {"client_version": "1.\x7f0"},
        "client_version '1.\\x7f0' holds control or non-ASCII characters.",
        "STABILITY_CLIENT_VERSION '1.\\x7f0' holds control or non-ASCII characters.",
    ),
    (
        {"client_id": "   "},
        "client_id is empty; pass None to send none.",
        "STABILITY_CLIENT_ID is empty.",
    ),
    (
        {"client_id": 3},
        "client_id must be a str, not int.",
        None,
    ),
    (
        {"base_url": "ftp://x"},
        "base_url 'ftp://x' must be an absolute http:// or https:// URL, such as "
        "'https://api.stability.ai'.",
        "--base-url (or STABILITY_BASE_URL) 'ftp://x' must be an absolute https:// URL, such as "
        "--base-url https://api.stability.ai.",
    ),
    (
        {"base_url": "https://u:p@api.example.com"},
        "base_url 'https://<credentials>@api.example.com/' must not hold credentials, a query "
        "or a fragment.",
        "--base-url (or STABILITY_BASE_URL) 'https://<credentials>@api.example.com/' must not "
        "hold credentials, a query or a fragment.",
    ),
    (
        {"base_url": "http://user:pa55word@127.0.0.1:9/v?token=sk-SECRET#frag"},
        "base_url 'http://<credentials>@127.0.0.1:9/v?<query>#<fragment>' must not hold "
        "credentials, a query or a fragment.",
        "--base-url (or STABILITY_BASE_URL) 'http://<credentials>@127.0.0.1:9/v?<query>"
        "#<fragment>' must not hold credentials, a query or a fragment.",
    ),
    (
        {"base_url": "http://api.example.com"},
        REFUSE_HTTP,
        "Refusing to send the API key over plain http:// to 'api.example.com': use an https:// "
        "URL, such as --base-url https://api.stability.ai.",
    ),
    ({"base_url": 3}, "base_url must be a str, not int.", None),
    (
        {"base_url": "http://[::1"},
        "base_url 'http://[::1' is not a valid URL: Invalid port: ':1'",
        "--base-url (or STABILITY_BASE_URL) 'http://[::1' is not a valid URL: Invalid port: ':1'",
    ),
    (
        {"api_version": 1},
        "api_version must be one of 'v1', 'v1alpha', not 1.",
        "--api-version (or STABILITY_API_VERSION) must be one of 'v1', 'v1alpha', not 1.",
    ),
    (
        {"timeout": 0},
        "timeout must be a positive number of seconds up to 86400 (a day) or an httpx2.Timeout, "
        "not 0.",
        "--timeout must be a positive number of seconds up to 86400 (a day), not 0.",
    ),
    (
        {"timeout": 1e10},
        "timeout must be a positive number of seconds up to 86400 (a day) or an httpx2.Timeout, "
        "not 10000000000.0.",
        "--timeout must be a positive number of seconds up to 86400 (a day), not 10000000000.0.",
    ),
    (
        {"timeout": 10**400},
        "timeout must be a positive number of seconds up to 86400 (a day) or an httpx2.Timeout, "
        "not an integer too large for a float.",
        "--timeout must be a positive number of seconds up to 86400 (a day), not an integer too "
        "large for a float.",
    ),
    (
        {"timeout": httpx2.Timeout(5.0, read=1e10)},
        "timeout's read must be None or a positive number of seconds up to 86400 (a day), not "
        "10000000000.0.",
        None,
    ),
    (
        {"max_retries": -1},
        "max_retries must be a whole number >= 0 (0 turns retries off), not -1.",
        None,
    ),
    (
        {"api_version": "v2"},
        "api_version must be one of 'v1', 'v1alpha', not 'v2'.",
        "--api-version (or STABILITY_API_VERSION) must be one of 'v1', 'v1alpha', not 'v2'.",
    ),
    (
        {"proxy": 3128},
        "proxy must be a URL string, not int.",
        None,
    ),
    (
        {"proxy": "ftp://proxy.example"},
        "proxy must be an absolute http://, https:// or socks5:// URL, such as "
        "'http://proxy.example:3128'.",
        None,
    ),
    (
        {"proxy": "http://[::1"},
        "proxy is not a valid URL: Invalid port: ':1'",
        None,
    ),
]


@pytest.mark.parametrize(("changes", "message", "cli_message"), CASES)
def test_each_configuration_error_says_what_is_wrong(
    changes: dict[str, Any], message: str, cli_message: str | None
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        resolve_settings(**{**BASE, **changes}, environ={})
    assert str(caught.value) == message
    assert caught.value.cli_message == cli_message
    if changes == {"api_key": None}:
        assert isinstance(caught.value, MissingAPIKeyError)


@pytest.mark.parametrize(
    "proxy",
    ["http://proxy.example:3128", "https://proxy.example", "HTTPS://Proxy.Example:8443"],
)
def test_http_and_https_proxies_are_accepted(proxy: str) -> None:
    settings = resolve_settings(**BASE, proxy=proxy, environ={})
    assert settings.proxy is not None
    assert settings.proxy.lower().startswith(proxy.lower().split(":", 1)[0])


@pytest.mark.parametrize("proxy", ["socks5://proxy.example:1080", "socks5h://proxy.example"])
def test_a_socks_proxy_needs_socksio(proxy: str) -> None:
    from importlib.util import find_spec

    if find_spec("socksio") is not None:
        assert resolve_settings(**BASE, proxy=proxy, environ={}).proxy == proxy
        StabilityUser("k", proxy=proxy).close()
        return
    with pytest.raises(ConfigurationError) as caught:
        StabilityUser("k", proxy=proxy)
    assert str(caught.value) == (
        "A socks5:// proxy needs the socksio package: pip install 'httpx2[socks]'."
    )


def test_the_environment_given_is_the_one_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STABILITY_API_KEY", "from-the-process")
    settings = resolve_settings(
        **{**BASE, "api_key": None},
        environ={"STABILITY_API_KEY": "from-the-mapping", "STABILITY_API_VERSION": "v1alpha"},
    )
    assert settings.api_key == "from-the-mapping"
    assert settings.api_version.name == "v1alpha"


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("https://gateway.example/proxyX/", "https://gateway.example/proxyX"),
        ("https://gateway.example/stability//", "https://gateway.example/stability"),
        (" https://api.stability.ai ", "https://api.stability.ai"),
    ],
)
def test_the_base_url_loses_only_its_trailing_slashes(given: str, kept: str) -> None:
    assert resolve_settings(**{**BASE, "base_url": given}, environ={}).base_url == kept


def test_a_socks_proxy_is_accepted_where_socksio_is_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.machinery
    import sys
    import types

    # Stands for the installed package: only whether it can be found matters here.
    socksio = types.ModuleType("socksio")
    socksio.__spec__ = importlib.machinery.ModuleSpec("socksio", None)
    monkeypatch.setitem(sys.modules, "socksio", socksio)
    settings = resolve_settings(**BASE, proxy="socks5://proxy.example:1080", environ={})
    assert settings.proxy == "socks5://proxy.example:1080"
