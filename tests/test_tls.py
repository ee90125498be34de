"""TLS: what a client trusts, on a loopback HTTPS server with a CA made in the test.

httpx2 verifies against the operating system's trust store; ``SSL_CERT_FILE`` or
``SSL_CERT_DIR`` replaces it (the file first), for a loopback host as for any other, on every
supported httpx2 (``_tls``). A certificate nobody trusts is an ``APIConnectionError`` caused by
httpx2's ``ConnectError``.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
import trustme

import stability_user
from stability_user import APIConnectionError, Balance, ConfigurationError, StabilityUser
from stability_user.testing import SAMPLE_API_KEY
from support.paths import PATHS, call_via
from support.tls_server import TLSStandIn


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def https(ca: trustme.CA) -> Iterator[TLSStandIn]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server = TLSStandIn(context)
    yield server
    server.close()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def ca_dir(ca_file: Path, tmp_path: Path) -> Path:
    # The layout OpenSSL reads from a folder: each certificate under its subject hash.
    folder = tmp_path / "certs"
    folder.mkdir()
    shutil.copy(ca_file, folder / "test-ca.pem")
    openssl = shutil.which("openssl")
    assert openssl, "the openssl command is needed to hash the folder (Debian's openssl)"
    subprocess.run([openssl, "rehash", str(folder)], check=True, capture_output=True, timeout=30)
    assert any(p.suffix == ".0" for p in folder.iterdir())
    return folder


@pytest.mark.parametrize("path", PATHS)
def test_a_certificate_from_an_unknown_ca_is_refused(
    https: TLSStandIn, waits: list[float], path: str
) -> None:
    with pytest.raises(APIConnectionError) as caught:
        call_via(path, "get_balance", api_key=SAMPLE_API_KEY, base_url=https.url)
    assert isinstance(caught.value.__cause__, httpx2.ConnectError)
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value.__cause__)
    assert SAMPLE_API_KEY not in str(caught.value)


@pytest.mark.parametrize(
    ("variable", "location"), [("SSL_CERT_FILE", "ca_file"), ("SSL_CERT_DIR", "ca_dir")]
)
@pytest.mark.parametrize("path", PATHS)
def test_the_ca_named_by_the_environment_is_trusted_for_a_loopback_host(
    https: TLSStandIn,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    location: str,
    path: str,
) -> None:
    monkeypatch.setenv(variable, str(request.getfixturevalue(location)))
    balance = call_via(path, "get_balance", api_key=SAMPLE_API_KEY, base_url=https.url)
    assert isinstance(balance, Balance)
    assert balance.credits > 0


def test_ssl_cert_file_wins_over_ssl_cert_dir(
    https: TLSStandIn, ca_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    monkeypatch.setenv("SSL_CERT_FILE", str(other))
    monkeypatch.setenv("SSL_CERT_DIR", str(ca_dir))
    with (
        StabilityUser(SAMPLE_API_KEY, base_url=https.url, max_retries=0) as client,
        pytest.raises(APIConnectionError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        client.get_balance()


def test_the_module_client_follows_a_change_of_ssl_cert_file(
    https: TLSStandIn, ca_file: Path, waits: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STABILITY_API_KEY", SAMPLE_API_KEY)
    monkeypatch.setenv("STABILITY_BASE_URL", https.url)
    with pytest.raises(APIConnectionError):
        stability_user.get_balance(timeout=10)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    assert stability_user.get_balance(timeout=10).credits > 0


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SSL_CERT_FILE", "missing.pem", "SSL_CERT_FILE='{}' is not a PEM bundle that can be"),
        ("SSL_CERT_FILE", "not-pem.txt", "SSL_CERT_FILE='{}' is not a PEM bundle that can be"),
        ("SSL_CERT_DIR", "missing-folder", "SSL_CERT_DIR='{}' is not a folder."),
    ],
)
def test_a_trust_setting_that_cannot_be_loaded_is_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    (tmp_path / "not-pem.txt").write_text("not a certificate\n")
    location = str(tmp_path / value)
    monkeypatch.setenv(variable, location)
    with pytest.raises(ConfigurationError) as caught:
        StabilityUser(SAMPLE_API_KEY)
    assert str(caught.value).startswith(message.format(location))


def test_a_bundle_is_loaded_once_for_many_clients_and_again_when_it_changes(
    https: TLSStandIn, ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One context per bundle, not per client: a thousand clients in one process (the
    # exporter's targets) would otherwise load the bundle a thousand times.
    bundle = tmp_path / "bundle.pem"
    trustme.CA().cert_pem.write_to_path(str(bundle))  # not the server's CA
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    first, second = (StabilityUser(SAMPLE_API_KEY, base_url=https.url, max_retries=0) for _ in "ab")
    with first, second:
        assert first._settings.verify is second._settings.verify is not None
        with pytest.raises(APIConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
            first.get_balance()
    # Replaced under the same name (a new inode, as package managers do): read again.
    replacement = tmp_path / "bundle.pem.new"
    ca.cert_pem.write_to_path(str(replacement))
    replacement.replace(bundle)
    with StabilityUser(SAMPLE_API_KEY, base_url=https.url, max_retries=0) as third:
        assert third.get_balance().credits > 0
