"""The aiohttp backend: how it is chosen, what it maps, and that it leaves nothing behind.

Its behaviour (faults, timeouts, proxies, limits, lifecycle, monitoring) is proven by the same
suites as httpx2's, run on both backends (``support.paths.PATHS`` and the ``http_backend``
fixture); this file holds what only this backend has.
"""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import sys
import textwrap

import aiohttp
import httpx2
import pytest
from aiohttp.client_reqrep import ConnectionKey
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from stability_user import AsyncStabilityUser, ConfigurationError, StabilityUser
from stability_user._core import already_read
from stability_user._exceptions import APIConnectionError, APITimeoutError
from stability_user._http._aiohttp import _read_response, map_aiohttp_error
from stability_user._http._deadlines import HeadersWait, ReadDeadlines
from stability_user._http._error_mapping import MAX_BODY_BYTES, connection_error
from stability_user.testing import SAMPLE_API_KEY, StandInAPI, StandInServer

SECRET = "sk-aiohttp-secret-0123456789"


def all_aiohttp_client_exceptions() -> list[type[BaseException]]:
    return sorted(
        (
            cls
            for _, cls in inspect.getmembers(aiohttp, inspect.isclass)
            if issubclass(cls, aiohttp.ClientError)
            and not issubclass(cls, aiohttp.WSServerHandshakeError)
        ),
        key=lambda cls: cls.__name__,
    )


def make(cls: type[BaseException]) -> BaseException:
    """An instance of ``cls``, however its constructor wants to be called."""
    key = ConnectionKey("127.0.0.1", 443, True, True, *([None] * (len(ConnectionKey._fields) - 4)))
    url = URL("http://127.0.0.1/v1/user/balance")
    info = aiohttp.RequestInfo(url, "GET", CIMultiDictProxy(CIMultiDict()), url)
    message = f"failure mentioning {SECRET}"
    for args in (
        (message,),
        (key, OSError(message)),
        (info, ()),
        (b"expected", b"got", "127.0.0.1", 443),
        (),
    ):
        try:
            error = cls(*args)
            str(error)
        except (TypeError, AttributeError):
            continue
        return error
    raise AssertionError(f"cannot make a {cls.__name__}")


def test_every_aiohttp_exception_is_known_to_the_test() -> None:
    assert len(all_aiohttp_client_exceptions()) >= 20


@pytest.mark.parametrize("exc_type", all_aiohttp_client_exceptions(), ids=lambda c: c.__name__)
def test_every_aiohttp_exception_maps_to_an_httpx2_one_and_then_a_typed_error(
    exc_type: type[BaseException],
) -> None:
    request = httpx2.Request("GET", "https://api.stability.ai/v1/user/balance")
    lower = make(exc_type)
    mapped = map_aiohttp_error(lower, request)
    assert isinstance(mapped, httpx2.TransportError)
    error = connection_error(mapped, request=request, secret=SECRET)
    assert isinstance(error, APIConnectionError)
    assert SECRET not in str(error)


@pytest.mark.parametrize(
    ("lower", "expected"),
    [
        (aiohttp.ConnectionTimeoutError("connect"), httpx2.ConnectTimeout),
        (aiohttp.SocketTimeoutError("read"), httpx2.ReadTimeout),
        (aiohttp.ServerDisconnectedError(), httpx2.RemoteProtocolError),
        (aiohttp.ClientPayloadError("truncated"), httpx2.RemoteProtocolError),
        (aiohttp.ClientConnectionResetError("reset"), httpx2.ReadError),
        (TimeoutError(), httpx2.ReadTimeout),
    ],
)
def test_the_mapping_says_what_httpx2_would(
    lower: BaseException, expected: type[httpx2.TransportError]
) -> None:
    request = httpx2.Request("GET", "https://api.stability.ai/v1/user/balance")
    mapped = map_aiohttp_error(lower, request)
    assert type(mapped) is expected
    assert mapped.request is request
    timeout = isinstance(mapped, httpx2.TimeoutException)
    assert (
        isinstance(connection_error(mapped, request=request, secret=SECRET), APITimeoutError)
        is timeout
    )


def test_the_backend_is_chosen_by_argument_environment_or_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert AsyncStabilityUser(SAMPLE_API_KEY).http_backend == "httpx2"
    assert AsyncStabilityUser(SAMPLE_API_KEY, http_backend=" AIOHTTP").http_backend == "aiohttp"
    monkeypatch.setenv("STABILITY_HTTP_BACKEND", "aiohttp")
    assert AsyncStabilityUser(SAMPLE_API_KEY).http_backend == "aiohttp"
    assert AsyncStabilityUser(SAMPLE_API_KEY, http_backend="httpx2").http_backend == "httpx2"
    # An explicit transport is an httpx2 one: it wins over the environment.
    standin = StandInAPI.sample().transport
    assert AsyncStabilityUser(SAMPLE_API_KEY, transport=standin).http_backend == "httpx2"
    # The sync client is httpx2's only.
    assert StabilityUser(SAMPLE_API_KEY).http_backend == "httpx2"


def test_an_unknown_backend_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError) as caught:
        AsyncStabilityUser(SAMPLE_API_KEY, http_backend="requests")
    assert str(caught.value) == "http_backend must be 'httpx2' or 'aiohttp', not 'requests'."
    monkeypatch.setenv("STABILITY_HTTP_BACKEND", "curl")
    with pytest.raises(ConfigurationError, match="STABILITY_HTTP_BACKEND must be 'httpx2' or"):
        AsyncStabilityUser(SAMPLE_API_KEY)


def test_aiohttp_with_a_transport_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="exclude each other"):
        AsyncStabilityUser(
            SAMPLE_API_KEY, http_backend="aiohttp", transport=StandInAPI.sample().transport
        )


def test_a_socks_proxy_on_aiohttp_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError) as caught:
        AsyncStabilityUser(SAMPLE_API_KEY, http_backend="aiohttp", proxy="socks5://127.0.0.1:1080")
    assert str(caught.value) == (
        "The aiohttp backend does not speak to socks5:// proxies; use http_backend='httpx2' "
        "(with pip install 'httpx2[socks]') or an http:// proxy."
    )


def run_python(code: str, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *flags, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_without_aiohttp_the_error_gives_the_install_line() -> None:
    result = run_python(
        """
        import sys
        sys.modules["aiohttp"] = None
        from stability_user import AsyncStabilityUser, ConfigurationError
        try:
            AsyncStabilityUser("sk-key-0123456789", http_backend="aiohttp")
        except ConfigurationError as error:
            print(error)
        """
    )
    assert result.stdout == (
        "The aiohttp backend needs aiohttp: pip install 'stability-user[aiohttp]'\n"
    ), result.stderr


def test_the_exporter_without_aiohttp_says_what_to_install() -> None:
    result = run_python(
        """
        import os, sys
        sys.modules["aiohttp"] = None
        os.environ["STABILITY_API_KEY"] = "sk-key-0123456789"
        from stability_user._cli import main
        sys.exit(main(["exporter", "--http-backend", "aiohttp"]))
        """
    )
    assert result.returncode == 2
    assert result.stderr == (
        "stability-user: error: --http-backend aiohttp needs aiohttp: "
        "pip install 'stability-user[aiohttp]'\n"
    )


def test_importing_stability_user_never_imports_aiohttp() -> None:
    result = run_python(
        """
        import sys
        import stability_user
        from stability_user import AsyncStabilityUser, StabilityUser
        AsyncStabilityUser("sk-key-0123456789")
        print("aiohttp" in sys.modules)
        """
    )
    assert result.stdout == "False\n", result.stderr


def test_no_unclosed_session_or_resource_warning_under_dev_mode(
    standin_server: StandInServer,
) -> None:
    # Successive event loops, a forked child, get_balances() and aclose(), with every warning
    # an error: aiohttp reports a session or connector left open, asyncio a transport.
    result = run_python(
        f"""
        import asyncio, gc, os
        from stability_user import AsyncStabilityUser
        client = AsyncStabilityUser("{SAMPLE_API_KEY}", base_url="{standin_server.url}",
                                    http_backend="aiohttp")
        for _ in range(3):
            assert asyncio.run(client.get_balance()).credits == 125.5
        pid = os.fork()
        if pid == 0:
            ok = asyncio.run(client.get_balance()).credits == 125.5
            gc.collect()
            os._exit(0 if ok else 1)
        assert os.waitpid(pid, 0)[1] == 0
        async def last():
            assert len(await client.get_balances()) == 3
            await client.aclose()
        asyncio.run(last())
        gc.collect()
        print("done")
        """,
        "-X",
        "dev",
        "-W",
        "error",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "done\n"
    # asyncio's debug mode may also report a slow first step (imports, a new session).
    for sign in ("Unclosed", "unclosed", "ResourceWarning", "Exception ignored", "Traceback"):
        assert sign not in result.stderr


@pytest.mark.parametrize("content", [b"", b'{"credits": 12.5}', '{"name": "\u00e9"}'.encode()])
def test_a_body_handed_up_read_is_what_httpx2_would_have_read(content: bytes) -> None:
    # The transport builds small answers read and closed, without httpx2's read(): they must
    # be indistinguishable from Response(content=...) to everything above it.
    request = httpx2.Request("GET", "http://127.0.0.1/v1/user/balance")
    headers = ((b"Content-Type", b"application/json"), (b"Content-Length", b"%d" % len(content)))
    extensions = {"http_version": b"HTTP/1.1", "reason_phrase": b"OK"}
    ours = _read_response(request, 200, headers, content, extensions)
    reference = httpx2.Response(200, headers=headers, content=content, extensions=extensions)
    assert ours.content == reference.content
    assert ours.text == reference.text
    assert ours.headers.raw == reference.headers.raw
    assert ours.request is request
    assert (ours.is_closed, ours.is_stream_consumed) == (True, True)
    assert ours.http_version == "HTTP/1.1"
    assert ours.reason_phrase == "OK"
    assert list(ours.iter_bytes()) == list(reference.iter_bytes())
    assert already_read(ours)
    assert already_read(reference)  # the same shortcut for a read response from any transport
    unread = httpx2.Response(200, headers=headers, stream=httpx2.ByteStream(content))
    assert not already_read(unread)
    # Past the cap, a read body still goes to the cap check (and its error).
    assert not already_read(httpx2.Response(200, content=b"x" * (MAX_BODY_BYTES + 1)))


def test_the_read_deadlines_expire_each_wait_in_time_and_none_that_ended() -> None:
    """One timer for every wait: a short wait armed after a long one still expires first, and
    a wait marked done is never expired."""

    async def main() -> None:
        deadlines = ReadDeadlines(asyncio.get_running_loop())
        never = asyncio.Event()
        tasks = [asyncio.ensure_future(never.wait()) for _ in range(3)]
        await asyncio.sleep(0)  # the tasks are running, as a sending task is
        long, short, ended = (
            HeadersWait(task, seconds)
            for task, seconds in zip(tasks, (60.0, 0.05, 0.05), strict=True)
        )
        for wait in (long, ended, short):
            deadlines.arm(wait)
        ended.done = True
        with pytest.raises(asyncio.CancelledError):
            await tasks[1]
        # The ended wait was armed before the short one: its deadline has passed too.
        assert short.expired
        assert not long.expired
        assert not tasks[0].done()
        assert not ended.expired
        assert not tasks[2].done()
        deadlines.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())


@pytest.mark.parametrize(
    ("also_cancelled", "told_of_it", "is_timeout", "left_cancelling"),
    [
        (False, True, True, 0),  # the expiry alone: a timeout, the task as it was found
        (True, True, False, 1),  # someone else cancelled too: theirs to see, not a timeout
        (False, False, False, 0),  # the cancellation was swallowed below: taken back all the same
    ],
    ids=["expiry-alone", "also-cancelled", "swallowed"],
)
def test_a_wait_ended_by_its_expiry_says_so_and_leaves_the_task_as_found(
    also_cancelled: bool, told_of_it: bool, is_timeout: bool, left_cancelling: int
) -> None:
    async def main() -> tuple[TimeoutError | None, int]:
        task = asyncio.current_task()
        assert task is not None
        wait = HeadersWait(task, 0.0)
        ReadDeadlines(asyncio.get_running_loop()).arm(wait)  # due at once
        if also_cancelled:
            asyncio.get_running_loop().call_soon(task.cancel)
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError as cancelled:
            expiry = wait.end(cancelled if told_of_it else None)
        else:
            raise AssertionError("the expiry did not cancel the wait")
        assert wait.expired
        left = task.cancelling()
        while task.uncancel():  # leave asyncio.run a task it can finish
            pass
        return expiry, left

    expiry, left = asyncio.run(main())
    assert isinstance(expiry, TimeoutError) is is_timeout
    if expiry is not None:
        assert isinstance(expiry.__cause__, asyncio.CancelledError)
    assert left == left_cancelling
