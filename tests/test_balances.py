"""get_balances(): every organization, concurrently, in the account's order, failures kept apart."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stability_user import AuthenticationError, PermissionDeniedError
from stability_user.testing import SAMPLE_API_KEY, StandInAPI, StandInOrganization, StandInServer
from support.paths import PATHS, call_via


@pytest.mark.parametrize("path", PATHS)
def test_every_organization_in_order(path: str, standin_server: StandInServer) -> None:
    results = call_via(path, "get_balances", api_key=SAMPLE_API_KEY, base_url=standin_server.url)
    assert [(r.organization.id, r.credits, r.error) for r in results] == [
        ("org-standin-personal", 125.5, None),
        ("org-standin-lumen", 42.0, None),
        ("org-standin-lab", 3.25, None),
    ]


@pytest.mark.parametrize("path", PATHS)
def test_one_failing_organization_does_not_lose_the_others(
    path: str, standin: StandInAPI, standin_server: StandInServer, waits: list[float]
) -> None:
    standin.inject_error(403, organization="org-standin-lumen", times=None, message="revoked")
    results = call_via(path, "get_balances", api_key=SAMPLE_API_KEY, base_url=standin_server.url)
    assert [r.organization.id for r in results] == [
        "org-standin-personal",
        "org-standin-lumen",
        "org-standin-lab",
    ]
    assert [r.credits for r in results] == [125.5, None, 3.25]
    failed = results[1]
    assert failed.balance is None
    assert isinstance(failed.error, PermissionDeniedError)
    assert failed.error.message == "revoked"
    assert failed.to_dict()["error"].startswith("PermissionDeniedError")


@pytest.mark.parametrize("path", PATHS)
def test_each_organization_is_asked_with_its_header(
    path: str, standin: StandInAPI, standin_server: StandInServer
) -> None:
    call_via(path, "get_balances", api_key=SAMPLE_API_KEY, base_url=standin_server.url)
    balance_requests = [r for r in standin.requests if r.path.endswith("/balance")]
    assert sorted(r.organization or "" for r in balance_requests) == [
        "org-standin-lab",
        "org-standin-lumen",
        "org-standin-personal",
    ]


@pytest.mark.parametrize("path", PATHS)
def test_a_failing_account_raises(path: str, standin_server: StandInServer) -> None:
    with pytest.raises(AuthenticationError):
        call_via(path, "get_balances", api_key="wrong", base_url=standin_server.url)


@pytest.mark.parametrize("path", PATHS)
def test_an_account_without_organizations(path: str) -> None:
    api = StandInAPI()
    api.add_account("lonely", email="l@example.com", organizations=[])
    with api.serve() as server:
        assert call_via(path, "get_balances", api_key="lonely", base_url=server.url) == []


@pytest.mark.parametrize("path", PATHS)
def test_many_organizations(path: str) -> None:
    api = StandInAPI()
    orgs = [StandInOrganization(f"org-{n:02}", f"Org {n}", credits=n) for n in range(20)]
    api.add_account("many", email="m@example.com", organizations=orgs)
    with api.serve() as server:
        results = call_via(path, "get_balances", api_key="many", base_url=server.url)
    assert [r.credits for r in results] == [float(n) for n in range(20)]


AT_EXIT = """
import atexit, sys
from stability_user import StabilityUser
from stability_user.testing import SAMPLE_API_KEY
if sys.argv[2] == "loaded":
    import concurrent.futures.thread  # the executor's module, imported before the exit
client = StabilityUser(SAMPLE_API_KEY, base_url=sys.argv[1])

@atexit.register
def at_exit():
    print(sorted(balance.credits for balance in client.get_balances()))
"""

# In a process of its own: a server in the exiting one could start no thread either.
SLOW_STAND_IN = """
import sys
from stability_user.testing import StandInAPI
with StandInAPI.sample().serve(latency=0.02) as server:  # latency: worth fetching on threads
    print(server.url, flush=True)
    sys.stdin.read()
"""


@pytest.mark.parametrize("executor", ["loaded", "not loaded"])
def test_get_balances_while_the_interpreter_exits_fetches_one_by_one(
    executor: str, tmp_path: Path
) -> None:
    # No thread can start once the interpreter exits (an atexit handler, or a collector's
    # daemon refresher at the end of a program): the organizations are fetched one after
    # another instead of failing with the executor's RuntimeError.
    script = tmp_path / "at_exit.py"
    script.write_text(AT_EXIT)
    with subprocess.Popen(
        [sys.executable, "-c", SLOW_STAND_IN],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as server:
        assert server.stdout is not None
        assert server.stdin is not None
        url = server.stdout.readline().strip()
        done = subprocess.run(
            [sys.executable, str(script), url, executor],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        server.stdin.close()
    assert (done.returncode, done.stdout, done.stderr) == (0, "[3.25, 42.0, 125.5]\n", "")
