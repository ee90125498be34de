"""The balance cache from the SDK's side: ``cached_balance()``, the entry names, the record, and
``status``'s quick reading of its arguments held equal to argparse's."""

from __future__ import annotations

import logging
import math
import pickle
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stability_user
from stability_user import CachedBalance, ConfigurationError, InternalServerError
from stability_user._cache._policy import backoff
from stability_user._cache._store import Entry, age_text, entry_for, entry_name, open_cache
from stability_user._cli._parser import status_parser
from stability_user._cli._status_options import read_arguments
from stability_user._config import resolve_settings
from stability_user.testing import SAMPLE_API_KEY, StandInAPI, StandInServer


@pytest.fixture
def env(
    standin_server: StandInServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> StandInServer:
    monkeypatch.setenv("STABILITY_API_KEY", SAMPLE_API_KEY)
    monkeypatch.setenv("STABILITY_BASE_URL", standin_server.url)
    monkeypatch.setenv("STABILITY_CACHE_DIR", str(tmp_path / "cache"))
    return standin_server


def balance_requests(api: StandInAPI) -> int:
    return sum(1 for request in api.requests if request.path.endswith("/balance"))


def test_cached_balance_asks_once_while_fresh(env: StandInServer, standin: StandInAPI) -> None:
    first = stability_user.cached_balance()
    assert (first.credits, first.organization, first.stale, first.error) == (
        125.5,
        None,
        False,
        None,
    )
    standin.set_credits("org-standin-personal", 1.0)
    again = stability_user.cached_balance()
    assert (again.credits, again.fetched_at) == (125.5, first.fetched_at)
    assert stability_user.cached_balance(max_age=0).credits == 1.0
    assert stability_user.cached_balance(refresh=True).credits == 1.0
    assert stability_user.cached_balance("org-standin-lab").credits == 3.25
    assert balance_requests(standin) == 4


def test_the_command_line_and_the_sdk_share_entries(
    env: StandInServer, standin: StandInAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    from stability_user._cli import main

    assert main(["status", "--org", "org-standin-lab"]) == 0
    assert capsys.readouterr().out == "3.25 cr\n"
    assert stability_user.cached_balance("org-standin-lab").credits == 3.25
    assert balance_requests(standin) == 1


def test_a_failed_refresh_returns_the_older_value_with_the_error(
    env: StandInServer, standin: StandInAPI, waits: list[float]
) -> None:
    stability_user.cached_balance()
    standin.inject_error(500, times=None)
    stale = stability_user.cached_balance(max_age=0)
    assert (stale.credits, stale.stale) == (125.5, True)
    assert isinstance(stale.error, InternalServerError)
    with pytest.raises(InternalServerError):
        stability_user.cached_balance("org-standin-lab")


@pytest.mark.parametrize("max_age", [-1, math.nan, math.inf, "60", True, None])
def test_a_bad_max_age_is_refused_and_nothing_sent(
    env: StandInServer, standin: StandInAPI, max_age: object
) -> None:
    with pytest.raises(ConfigurationError, match="max_age must be a number of seconds >= 0"):
        stability_user.cached_balance(max_age=max_age)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="organization"):
        stability_user.cached_balance(" org")
    assert standin.requests == []


def test_an_unsafe_folder_is_logged_and_skipped(
    env: StandInServer,
    standin: StandInAPI,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    folder = tmp_path / "cache"
    folder.mkdir()
    folder.chmod(0o777)
    with caplog.at_level(logging.WARNING, logger="stability_user"):
        assert stability_user.cached_balance().credits == 125.5
        assert stability_user.cached_balance().credits == 125.5
    assert balance_requests(standin) == 2
    assert f"cache directory {folder} is writable by other users" in caplog.text
    assert list(folder.iterdir()) == []


def test_entry_names_differ_by_everything_they_are_for_and_hide_the_key() -> None:
    base = ("https://api.stability.ai", "v1", "sk-secret", None)
    names = {
        entry_name(*base),
        entry_name("https://api.example.com", "v1", "sk-secret", None),
        entry_name("https://api.stability.ai", "v1alpha", "sk-secret", None),
        entry_name("https://api.stability.ai", "v1", "sk-other", None),
        entry_name("https://api.stability.ai", "v1", "sk-secret", "org-1"),
        entry_name("https://api.stability.ai", "v1", "sk-secret", ""),
    }
    assert len(names) == 6
    assert entry_name(*base) == entry_name(*base)
    assert all(len(name) == 64 and "secret" not in name for name in names)


SCHEMES = st.sampled_from(["http", "https", "HTTP", "Https"])
HOSTS = st.sampled_from(
    ["api.stability.ai", "API.Stability.AI", "127.0.0.1", "localhost", "a-b.example", "[::1]"]
)
PORTS = st.sampled_from(["", ":80", ":443", ":8443", ":0443", ":1"])
SEGMENTS = st.lists(
    st.sampled_from(["v1", "x y", ".", "..", "", "%7e", "A~b_c.d", "é"]), max_size=3
)


@settings(max_examples=300, deadline=None)
@given(
    scheme=SCHEMES,
    host=HOSTS,
    port=PORTS,
    segments=SEGMENTS,
    slashes=st.sampled_from(["", "/", "//"]),
    space=st.sampled_from(["", " ", "\t"]),
)
def test_a_base_url_names_the_entry_its_client_would_talk_to(
    scheme: str, host: str, port: str, segments: list[str], slashes: str, space: str
) -> None:
    from stability_user._cache._canonical import base_url

    raw = f"{space}{scheme}://{host}{port}" + "".join("/" + s for s in segments) + slashes + space
    settings = resolve_settings(
        api_key="sk-x",
        organization=None,
        base_url=raw,
        timeout=5,
        max_retries=0,
        allow_insecure_http=True,
        environ={},
    )
    assert base_url(raw) == settings.base_url


@pytest.mark.parametrize(
    "written",
    ["sk-1", " sk-1 ", "Bearer sk-1", "bearer  sk-1", "BEARER sk-1\n"],
)
def test_a_key_names_the_entry_its_client_would_send(written: str) -> None:
    plain = entry_for("https://api.stability.ai", "v1", "sk-1", None)
    assert entry_for("https://api.stability.ai/", " V1", written, None) == plain
    settings = resolve_settings(
        api_key=written,
        organization=None,
        base_url=None,
        timeout=5,
        max_retries=0,
        allow_insecure_http=False,
        environ={},
    )
    assert settings.api_key == "sk-1"


def test_the_record_is_frozen_comparable_and_printable() -> None:
    record = CachedBalance(1072.5, "org-1", 1796282684.0, 720.0)
    with pytest.raises(AttributeError, match="immutable"):
        record.credits = 1.0  # type: ignore[misc]
    with pytest.raises(AttributeError, match="immutable"):
        del record.stale
    assert record == CachedBalance(1072.5, "org-1", 1796282684.0, 720.0)
    assert record != CachedBalance(1072.5, "org-1", 1796282684.0, 720.0, stale=True)
    assert record != (1072.5,)
    assert hash(record) == hash(CachedBalance(1072.5, "org-1", 1796282684.0, 720.0))
    assert repr(record) == (
        "CachedBalance(credits=1072.5, organization='org-1', age=720.0, stale=False)"
    )
    stale = CachedBalance(
        1.0, None, 0.0, 1.0, stale=True, error=InternalServerError.__new__(InternalServerError)
    )
    assert repr(stale).endswith("stale=True, error=InternalServerError)")
    assert record.to_dict() == {
        "credits": 1072.5,
        "organization": "org-1",
        "fetched_at": "2026-12-03T07:24:44Z",
        "age": 720.0,
        "stale": False,
        "error": None,
        "runs_out_at": None,
    }
    with_runway = CachedBalance(1.0, None, 0.0, 1.0, runs_out_at=1796282684.0)
    assert with_runway.to_dict()["runs_out_at"] == "2026-12-03T07:24:44Z"
    assert with_runway != CachedBalance(1.0, None, 0.0, 1.0)
    assert pickle.loads(pickle.dumps(record)) == record


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-3, "0s"),
        (0, "0s"),
        (59.9, "59s"),
        (60, "1m"),
        (3599, "59m"),
        (3600, "1h"),
        (86400 * 3, "3d"),
    ],
)
def test_ages_read_as_a_prompt_shows_them(seconds: float, text: str) -> None:
    assert age_text(seconds) == text


@pytest.mark.parametrize(
    "entry",
    [
        Entry(0.1 + 0.2, 1796282684.3009503),
        Entry(125.5, 1796282684.0, failed_at=1796282690.5, failures=3, failure="api", error="x y"),
        Entry(failed_at=1796282690.5, failures=1, failure="refused", error="AuthenticationError"),
        Entry(7.0, 1796282684.0, attempt_until=1796282700.0),
    ],
    ids=["value", "value-and-failure", "failure-only", "attempt"],
)
def test_an_entry_written_reads_back_exactly(tmp_path: Path, entry: Entry) -> None:
    cache = open_cache(str(tmp_path / "c"))
    cache.write("abc", entry)
    assert cache.read("abc", 1796282700.0) == entry
    assert cache.read("abd", 1796282700.0) is None  # another entry's name


def test_an_error_line_is_kept_to_one_printable_line(tmp_path: Path) -> None:
    cache = open_cache(str(tmp_path / "c"))
    cache.write(
        "abc", Entry(failed_at=1.0, failures=1, failure="api", error="a\nb\x00" + "c" * 900)
    )
    read = cache.read("abc", 2.0)
    assert read is not None
    assert read.error == "a b " + "c" * 496


@pytest.mark.parametrize(
    ("failures", "seconds"),
    [(1, 30), (2, 60), (3, 120), (4, 240), (5, 480), (6, 600), (7, 600), (10**6, 600)],
)
def test_the_back_off_doubles_up_to_ten_minutes(failures: int, seconds: float) -> None:
    assert backoff(failures) == seconds


# -- status's arguments: read without argparse exactly as argparse reads them ----------------

WORDS = st.sampled_from(
    [
        "--org",
        "--org=org-1",
        "org-2",
        "--max-age",
        "--max-age=5",
        "0",
        "30",
        "-1",
        "nan",
        "--timeout",
        "2.5",
        "--format",
        "{credits:,.0f} cr",
        "{nope}",
        "--format={stale}{credits}",
        "--json",
        "--refresh",
        "--base-url",
        "http://127.0.0.1:1",
        "--api-version",
        "v1alpha",
        "--max",
        "--js",
        "-h",
        "--",
        "",
        "--org=",
        "--json=1",
    ]
)
FIELDS = ("org", "max_age", "timeout", "format", "json", "refresh", "base_url", "api_version")


def argparse_reading(argv: list[str]) -> dict[str, object] | None:
    try:
        namespace = status_parser().parse_args(argv)
    except SystemExit:
        return None
    return {name: getattr(namespace, name) for name in FIELDS}


@settings(max_examples=400, deadline=None)
@given(argv=st.lists(WORDS, max_size=6))
def test_the_quick_reading_agrees_with_argparse_wherever_it_answers(argv: list[str]) -> None:
    quick = read_arguments(argv)
    reading = argparse_reading(argv)
    if quick is not None:
        assert {name: getattr(quick, name) for name in FIELDS} == reading


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--org", "org-1"],
        ["--max-age", "30", "--timeout", "1"],
        ["--format", "{stale}{credits:,.0f} cr"],
        ["--json", "--refresh"],
        ["--org=org-1", "--max-age=0", "--base-url", "http://127.0.0.1:8000"],
    ],
)
def test_the_usual_invocations_are_read_without_argparse(argv: list[str]) -> None:
    quick = read_arguments(argv)
    assert quick is not None
    assert {name: getattr(quick, name) for name in FIELDS} == argparse_reading(argv)
