"""Budget guards and spend per job: ``require_credits()`` and ``track_spend()`` through every
door (sync, async on httpx2 and on aiohttp, module-level), against the stand-in on loopback."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import pickle
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest

import stability_user
from stability_user import (
    AsyncStabilityUser,
    BudgetExceededError,
    ConfigurationError,
    InsufficientCreditsError,
    InternalServerError,
    Spend,
    StabilityError,
    StabilityUser,
)
from stability_user.history import job_totals, read_jobs
from stability_user.testing import SAMPLE_API_KEY, StandInAPI, StandInServer
from support.paths import ASYNC_BACKENDS, PATHS, call_via

ORG = "org-standin-lab"


@pytest.fixture
def url(standin_server: StandInServer) -> str:
    return standin_server.url


def balance_requests(api: StandInAPI) -> int:
    return sum(1 for request in api.requests if request.path.endswith("/balance"))


# -- require_credits ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
def test_enough_credits_returns_the_balance(path: str, url: str) -> None:
    balance = call_via(path, "require_credits", 100, api_key=SAMPLE_API_KEY, base_url=url)
    assert balance.credits == 125.5
    balance = call_via(path, "require_credits", 3.25, ORG, api_key=SAMPLE_API_KEY, base_url=url)
    assert balance.credits == 3.25


@pytest.mark.parametrize("path", PATHS)
def test_too_few_credits_raise_with_both_amounts_and_the_organization(path: str, url: str) -> None:
    with pytest.raises(InsufficientCreditsError) as raised:
        call_via(path, "require_credits", 10, ORG, api_key=SAMPLE_API_KEY, base_url=url)
    error = raised.value
    assert (error.required, error.available, error.organization) == (10.0, 3.25, ORG)
    assert str(error) == f"Organization {ORG} has 3.25 credits; 10.00 are required."
    with pytest.raises(InsufficientCreditsError) as raised:
        call_via(path, "require_credits", 1000.5, api_key=SAMPLE_API_KEY, base_url=url)
    assert str(raised.value) == (
        "The default organization has 125.50 credits; 1,000.50 are required."
    )
    assert raised.value.organization is None
    assert not isinstance(raised.value, stability_user.APIStatusError)
    assert isinstance(raised.value, StabilityError)


def test_the_client_default_organization_is_named(url: str) -> None:
    with (
        StabilityUser(SAMPLE_API_KEY, base_url=url, organization=ORG) as client,
        pytest.raises(InsufficientCreditsError, match=f"Organization {ORG} has 3.25"),
    ):
        client.require_credits(4)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("minimum", [-1, -0.01, math.nan, math.inf, -math.inf, "10", None, True])
def test_a_bad_minimum_is_refused_and_nothing_sent(
    path: str, url: str, standin: StandInAPI, minimum: object
) -> None:
    with pytest.raises(ConfigurationError, match="minimum must be"):
        call_via(path, "require_credits", minimum, api_key=SAMPLE_API_KEY, base_url=url)
    assert standin.requests == []


def test_zero_is_a_minimum_every_balance_meets(url: str) -> None:
    with StabilityUser(SAMPLE_API_KEY, base_url=url) as client:
        assert client.require_credits(0, ORG).credits == 3.25


def test_the_error_pickles_with_its_attributes() -> None:
    error = InsufficientCreditsError("m", required=2.0, available=1.0, organization="org-1")
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.required, copy.available, copy.organization) == (
        "m",
        2.0,
        1.0,
        "org-1",
    )


# -- track_spend -------------------------------------------------------------------------------

Tracker = Callable[..., AbstractContextManager[Spend]]


@pytest.fixture(params=[*("sync", "module"), *ASYNC_BACKENDS])
def tracker(request: pytest.FixtureRequest, url: str, monkeypatch: pytest.MonkeyPatch) -> Tracker:
    """``track_spend`` through one door, as a plain ``with``: the async ones run their
    ``async with`` in an event loop of their own, the block in between run by the test."""
    door: str = request.param
    monkeypatch.setenv("STABILITY_API_KEY", SAMPLE_API_KEY)
    monkeypatch.setenv("STABILITY_BASE_URL", url)
    if door == "module":
        return stability_user.track_spend
    if door == "sync":

        @contextmanager
        def sync(*args: Any, **kwargs: Any) -> Iterator[Spend]:
            with StabilityUser() as client, client.track_spend(*args, **kwargs) as spend:
                yield spend

        return sync

    @contextmanager
    def in_a_loop(*args: Any, **kwargs: Any) -> Iterator[Spend]:
        loop = asyncio.new_event_loop()
        client = AsyncStabilityUser(http_backend=ASYNC_BACKENDS[door])
        manager = client.track_spend(*args, **kwargs)
        try:
            spend = loop.run_until_complete(manager.__aenter__())
            try:
                yield spend
            except BaseException as error:
                if not loop.run_until_complete(manager.__aexit__(type(error), error, None)):
                    raise
            else:
                loop.run_until_complete(manager.__aexit__(None, None, None))
        finally:
            loop.run_until_complete(client.aclose())
            loop.close()

    return in_a_loop


def test_a_block_that_spends_is_measured(tracker: Tracker, standin: StandInAPI) -> None:
    with tracker() as spend:
        assert (spend.before, spend.after, spend.credits, spend.finished) == (
            125.5,
            None,
            None,
            False,
        )
        assert repr(spend) == "Spend(None, before=125.5, running)"
        standin.spend("org-standin-personal", 12.25)
        standin.spend("org-standin-personal", 0.1)
    assert (spend.after, spend.credits, spend.error) == (113.15, 12.35, None)
    assert spend.finished
    assert spend.ended_at is not None
    assert spend.ended_at >= spend.started_at
    assert spend.seconds is not None
    assert spend.seconds >= 0
    assert spend.organizations == ()
    assert repr(spend).startswith("Spend(None, before=125.5, after=113.15, credits=12.35, ")


def test_a_block_that_raises_still_records_its_spend(tracker: Tracker, standin: StandInAPI) -> None:
    def job() -> None:
        standin.spend(ORG, 1.25)
        raise RuntimeError("the job failed half-way")

    with pytest.raises(RuntimeError, match="the job failed half-way"), tracker(ORG) as spend:
        job()
    assert (spend.organization, spend.before, spend.after, spend.credits) == (ORG, 3.25, 2.0, 1.25)


def test_a_failed_read_on_exit_is_recorded_not_raised(
    tracker: Tracker, standin: StandInAPI, waits: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="stability_user"), tracker() as spend:
        standin.inject_error(500, times=None)
    assert (spend.after, spend.credits) == (None, None)
    assert isinstance(spend.error, InternalServerError)
    assert spend.finished
    assert "The balance after the block could not be read: InternalServerError" in caplog.text


def test_a_failed_read_on_exit_never_masks_the_block_error(
    tracker: Tracker, standin: StandInAPI, waits: list[float]
) -> None:
    def job() -> None:
        standin.inject_error(500, times=None)
        raise KeyError("the block's own")

    with pytest.raises(KeyError, match="the block's own"), tracker() as spend:
        job()
    assert isinstance(spend.error, InternalServerError)


def test_a_failed_read_on_entry_raises_and_the_block_does_not_run(
    tracker: Tracker, standin: StandInAPI, waits: list[float]
) -> None:
    standin.inject_error(401, times=None, message="bad key")
    ran = []
    with pytest.raises(stability_user.AuthenticationError), tracker():
        ran.append(True)
    assert ran == []


def test_a_top_up_during_the_block_is_a_negative_spend(
    tracker: Tracker, standin: StandInAPI
) -> None:
    with tracker() as spend:
        standin.spend("org-standin-personal", 5)
        standin.set_credits("org-standin-personal", 1120.5)  # topped up by 1,000
    assert (spend.before, spend.after, spend.credits) == (125.5, 1120.5, -995.0)


def test_every_organization_each_and_in_total(tracker: Tracker, standin: StandInAPI) -> None:
    with tracker(all_organizations=True) as spend:
        standin.spend("org-standin-lumen", 2)
        standin.spend(ORG, 0.25)
    assert spend.all_organizations
    assert spend.organization is None
    assert (spend.before, spend.after, spend.credits) == (170.75, 168.5, 2.25)
    assert [(p.id, p.before, p.after, p.credits) for p in spend.organizations] == [
        ("org-standin-personal", 125.5, 125.5, 0.0),
        ("org-standin-lumen", 42.0, 40.0, 2.0),
        (ORG, 3.25, 3.0, 0.25),
    ]


def test_every_organization_with_one_unreadable_after(
    tracker: Tracker, standin: StandInAPI, waits: list[float]
) -> None:
    with tracker(all_organizations=True) as spend:
        standin.inject_error(403, organization=ORG, times=None, message="gone")
    assert (spend.after, spend.credits) == (None, None)
    assert isinstance(spend.error, stability_user.PermissionDeniedError)
    lab = spend.organizations[2]
    assert (lab.id, lab.before, lab.after, lab.credits) == (ORG, 3.25, None, None)
    assert lab.error is spend.error
    assert spend.organizations[0].credits == 0.0


def test_an_organization_and_all_of_them_exclude_each_other(
    tracker: Tracker, standin: StandInAPI
) -> None:
    with pytest.raises(ConfigurationError, match="not both"), tracker(ORG, all_organizations=True):
        pass
    assert standin.requests == []


def test_the_record_is_read_only_and_serializes(tracker: Tracker, standin: StandInAPI) -> None:
    with tracker(ORG) as spend:
        with pytest.raises(AttributeError, match="read-only"):
            spend.credits = 0.0  # type: ignore[misc]
        standin.spend(ORG, 1)
    with pytest.raises(AttributeError, match="read-only"):
        spend.after = 9.0  # type: ignore[misc]
    with pytest.raises(AttributeError, match="read-only"):
        del spend.before
    data = json.loads(json.dumps(spend.to_dict()))
    assert data["organization"] == ORG
    assert (data["before"], data["after"], data["credits"], data["error"]) == (
        3.25,
        2.25,
        1.0,
        None,
    )
    assert data["started_at"].endswith("+00:00")
    assert data["ended_at"] >= data["started_at"]
    assert data["organizations"] == []


def test_two_reads_a_block(tracker: Tracker, standin: StandInAPI) -> None:
    with tracker(ORG):
        pass
    assert balance_requests(standin) == 2
    assert [r.organization for r in standin.requests] == [ORG, ORG]


def test_the_stand_in_spends_as_a_generation_would(standin: StandInAPI) -> None:
    assert standin.spend(ORG, 1.25) == 2.0
    with pytest.raises(ValueError, match="has 2 credits, fewer than 3"):
        standin.spend(ORG, 3)
    for bad in (0, -1, math.nan, math.inf, "x"):
        with pytest.raises(ValueError, match="positive number"):
            standin.spend(ORG, bad)  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        standin.spend("org-nope", 1)


def test_the_served_stand_in_spends_from_another_process(
    standin: StandInAPI, standin_server: StandInServer
) -> None:
    import httpx2

    def spend(credits: str, **headers: str) -> httpx2.Response:
        return httpx2.post(
            standin_server.url + "/_standin/spend",
            params={"credits": credits},
            headers={"Authorization": f"Bearer {SAMPLE_API_KEY}", **headers},
        )

    assert spend("2.5").json() == {"organization": "org-standin-personal", "credits": 123.0}
    assert spend("0.25", Organization=ORG).json() == {"organization": ORG, "credits": 3.0}
    assert spend("9", Organization=ORG).status_code == 400
    assert spend("-1").status_code == 400
    assert spend("2", Organization="org-other").status_code == 403
    assert httpx2.get(standin_server.url + "/_standin/spend").status_code == 405
    assert httpx2.post(standin_server.url + "/_standin/spend?credits=1").status_code == 401
    standin.inject_error(500, times=None)  # the API's errors, not the stand-in's own route
    assert spend("1").status_code == 200
    standin.clear_errors()
    with StabilityUser(SAMPLE_API_KEY, base_url=standin_server.url) as client:
        assert client.get_balance().credits == 122.0
        assert client.get_balance(ORG).credits == 3.0


@pytest.mark.parametrize("path", PATHS)
def test_a_minimum_beyond_any_float_is_a_configuration_error(path: str, url: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        call_via(path, "require_credits", 10**400, api_key=SAMPLE_API_KEY, base_url=url)
    assert str(raised.value) == (
        "minimum must be a finite number >= 0, not an integer too large for a float."
    )


# -- the ledger: labels, budgets, overlaps (track_spend's jobs) --------------------------------


def test_a_labelled_block_is_a_job_in_the_ledger(tracker: Tracker, standin: StandInAPI) -> None:
    with tracker(label="client/acme", note="=cmd|' /C calc'!A0", expected=2.0) as spend:
        standin.spend("org-standin-personal", 1.75)

    def failing_job() -> None:
        standin.spend(ORG, 0.5)
        raise RuntimeError("the job failed")

    with pytest.raises(RuntimeError), tracker(ORG, label="client/acme"):
        failing_job()
    jobs = read_jobs(all_organizations=True)
    assert [(job.label, job.organization, job.spent, job.raised) for job in jobs] == [
        ("client/acme", ORG, 0.5, True),
        ("client/acme", None, 1.75, False),  # the default organization, its id not read
    ]
    job = jobs[1]
    assert (job.before, job.after, job.expected, job.exit_status) == (125.5, 123.75, 2.0, None)
    assert job.note == "=cmd|' /C calc'!A0"
    assert job.started_at <= spend.started_at  # before the balance was read before it
    assert spend.ended_at is not None
    assert job.ended_at >= spend.ended_at
    assert job.program  # this program's name, whatever runs the tests
    assert (job.overlaps, job.attributed, job.estimated) == ((), 1.75, False)
    assert read_jobs() == [job]  # the key's default organization


def test_an_unlabelled_block_is_recorded_only_by_a_client_that_records(
    standin: StandInAPI, url: str
) -> None:
    with StabilityUser(SAMPLE_API_KEY, base_url=url) as client, client.track_spend():
        pass
    assert read_jobs(api_key=SAMPLE_API_KEY, base_url=url) == []
    with (
        StabilityUser(SAMPLE_API_KEY, base_url=url, history=True) as client,
        client.track_spend(),
    ):
        standin.spend("org-standin-personal", 1)
    (job,) = read_jobs(api_key=SAMPLE_API_KEY, base_url=url)
    assert (job.label, job.spent) == (None, 1.0)


def test_with_the_history_off_a_label_records_nothing_and_a_budget_is_refused(
    tracker: Tracker, standin: StandInAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STABILITY_HISTORY", "off")
    with tracker(label="a"):
        pass
    with (
        pytest.raises(ConfigurationError, match="STABILITY_HISTORY=off"),
        tracker(label="a", budget=5),
    ):
        pass
    monkeypatch.delenv("STABILITY_HISTORY")
    assert read_jobs(all_organizations=True) == []


def test_a_budget_runs_the_block_until_the_label_would_pass_it(
    tracker: Tracker, standin: StandInAPI
) -> None:
    with tracker(label="render"):
        standin.spend("org-standin-personal", 20)
    ran = []
    with tracker(label="render", budget=25, expected=5):  # 20 + 5: not past 25
        ran.append("first")
    with (
        pytest.raises(BudgetExceededError) as refused,
        tracker(ORG, label="render", budget=25, per="week", expected=5.5),
    ):
        ran.append("second")
    assert ran == ["first"]
    error = refused.value
    assert isinstance(error, InsufficientCreditsError)
    assert (error.label, error.budget, error.spent, error.per, error.expected) == (
        "render",
        25.0,
        20.0,
        "week",
        5.5,
    )
    assert (error.required, error.available, error.organization) == (5.5, 5.0, ORG)
    assert str(error) == (
        "Label render has spent 20.00 credits this week and the block is expected to cost "
        "5.50: more than its budget of 25.00 a week. The block was not run."
    )
    assert pickle.loads(pickle.dumps(error)).spent == 20.0
    with tracker(label="other", budget=0):  # another label's spend is not this one's
        pass


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"label": "two words"}, "label must be 1 to 64"),
        ({"label": "x" * 65}, "label must be 1 to 64"),
        ({"label": 7}, "not int"),
        ({"label": "a", "budget": -1}, "budget must be a finite number >= 0"),
        ({"label": "a", "budget": math.nan}, "budget must be a finite number >= 0"),
        ({"label": "a", "budget": 10**400}, "budget must be a finite number >= 0"),
        ({"label": "a", "budget": 1, "per": "year"}, "per must be 'day', 'week' or 'month'"),
        ({"budget": 1}, "A budget is per label"),
        ({"label": "a", "expected": math.inf}, "expected must be a finite number >= 0"),
        ({"note": "n" * 1001}, "note must be text of at most 1000 characters"),
    ],
)
def test_bad_ledger_arguments_are_refused_before_anything_is_read(
    tracker: Tracker, standin: StandInAPI, options: dict[str, Any], says: str
) -> None:
    ran = []
    with pytest.raises(ConfigurationError, match=re.escape(says)), tracker(**options):
        ran.append(True)
    assert ran == []
    assert standin.requests == []


def test_overlapping_blocks_are_marked_and_split_by_their_expected_costs(
    url: str, standin: StandInAPI
) -> None:
    with StabilityUser(SAMPLE_API_KEY, base_url=url) as client:
        with client.track_spend(label="a", expected=3) as outer:
            with client.track_spend(label="b", expected=1) as inner:
                standin.spend("org-standin-personal", 4)
            standin.spend("org-standin-personal", 2)
        # Apart from them, later: an overlap of two where one has no expected cost.
        with client.track_spend(label="c", expected=1), client.track_spend(label="d"):
            standin.spend("org-standin-personal", 1)
    assert (outer.credits, inner.credits) == (6.0, 4.0)
    d, c, b, a = read_jobs(api_key=SAMPLE_API_KEY, base_url=url)
    assert (a.overlaps, b.overlaps, c.overlaps, d.overlaps) == ((b.id,), (a.id,), (d.id,), (c.id,))
    # a and b: 6 spent from a's start to a's end, 3 to 1.
    assert [(job.attributed, job.estimated) for job in (a, b)] == [(4.5, True), (1.5, True)]
    assert [(job.attributed, job.estimated) for job in (c, d)] == [(1.0, False), (1.0, False)]
    totals = {total.label: total for total in job_totals([a, b, c, d])}
    assert (totals["a"].spent, totals["a"].overlapping, totals["a"].estimated) == (4.5, 4.5, 4.5)
    assert (totals["d"].spent, totals["d"].overlapping, totals["d"].estimated) == (1.0, 1.0, 0.0)
    (everything,) = job_totals([a, b, c, d], by="month")
    assert (everything.jobs, everything.spent, everything.overlapping) == (4, 8.0, 8.0)
