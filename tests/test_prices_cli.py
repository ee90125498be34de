"""``stability-user prices``, ``estimate``, ``balance --as``, ``balances --as`` and ``measure
--expect``, run as the real command against the sample stand-in served on loopback."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from stability_user.testing import SAMPLE_API_KEY, StandInAPI, StandInServer

COMMAND = str(Path(sys.executable).parent / "stability-user")
CORE = "/v2beta/stable-image/generate/core"
# Ten real multipart calls to the stand-in's core endpoint, then one it refuses with a 400 (no
# prompt), from a process of their own, as a batch job would make them.
BATCH = f"""\
import os, httpx2
url = os.environ["STABILITY_BASE_URL"] + "{CORE}"
headers = {{"Authorization": "Bearer " + os.environ["STABILITY_API_KEY"], "Accept": "image/*"}}
for number in range(10):
    answer = httpx2.post(url, headers=headers, data={{"prompt": f"a lighthouse {{number}}"}},
                         files={{"none": ""}})
    assert answer.status_code == 200 and answer.content.startswith(b"\\x89PNG"), answer.text
refused = httpx2.post(url, headers=headers, data={{"seed": "1"}}, files={{"none": ""}})
assert refused.status_code == 400, refused.text
"""


@pytest.fixture
def api(standin: StandInAPI) -> StandInAPI:
    """The sample stand-in (conftest's), served by ``env``."""
    return standin


@pytest.fixture
def env(standin_server: StandInServer) -> dict[str, str]:
    return {
        **os.environ,
        "STABILITY_API_KEY": SAMPLE_API_KEY,
        "STABILITY_BASE_URL": standin_server.url,
        "NO_COLOR": "1",
    }


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COMMAND, *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )


def balance_reads(api: StandInAPI) -> int:
    return sum(1 for request in api.requests if request.path.endswith("/balance"))


# -- estimate -----------------------------------------------------------------------------------


def test_a_plan_the_balance_does_not_cover_is_exit_3(env: dict[str, str], api: StandInAPI) -> None:
    done = cli(env, "estimate", "100", "ultra", "20", "core")
    assert (done.returncode, done.stderr) == (3, "")
    assert done.stdout == (
        "SERVICE  CALLS  EACH  CREDITS\n"
        "ultra    100    8     800.00\n"
        "core     20     3     60.00\n"
        "total                 860.00\n"
        "The default organization has 125.50 credits: short by 734.50 for the plan "
        "(92 ultra or 245 core calls).\n"
    )
    assert balance_reads(api) == 1


def test_a_plan_the_balance_covers_is_exit_0(env: dict[str, str]) -> None:
    done = cli(env, "estimate", "10", "core")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines()[-1] == (
        "The default organization has 125.50 credits: 95.50 left after the plan "
        "(31 more core calls)."
    )


def test_min_credits_keeps_n_more_and_org_reads_another_organization(
    env: dict[str, str], api: StandInAPI
) -> None:
    done = cli(env, "estimate", "10", "core", "--min-credits", "100")
    assert done.returncode == 3
    assert done.stdout.splitlines()[-1] == (
        "The default organization has 125.50 credits: short by 4.50 for the plan and 100.00 "
        "more (--min-credits) (2 core calls)."
    )
    assert cli(env, "estimate", "10", "core", "--min-credits", "95.5").returncode == 0
    lab = cli(env, "estimate", "1", "core", "--org", "org-standin-lab")
    assert lab.returncode == 0
    assert lab.stdout.splitlines()[-1].startswith("Organization org-standin-lab has 3.25 credits")
    assert [r.organization for r in api.requests if r.path.endswith("/balance")][-1] == (
        "org-standin-lab"
    )


def test_an_organization_it_cannot_use_is_exit_2_and_nothing_is_sent(
    env: dict[str, str], api: StandInAPI
) -> None:
    done = cli(env, "estimate", "1", "core", "--org", " ")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "stability-user: error: --org (or STABILITY_ORGANIZATION) is empty.\n"
    assert api.requests == []


def test_json_holds_the_lines_the_balance_and_the_verdict(env: dict[str, str]) -> None:
    done = cli(env, "estimate", "100", "ultra", "20", "core", "5", "ultra", "--json")
    assert done.returncode == 3
    report = json.loads(done.stdout)
    assert report["plan"] == "105 ultra + 20 core"  # named twice: added up
    assert report["total"] == 900.0
    assert [
        (line["name"], line["count"], line["credits_each"], line["credits"])
        for line in report["lines"]
    ] == [("ultra", 105, 8.0, 840.0), ("core", 20, 3.0, 60.0)]
    assert (report["balance"], report["left"], report["short"], report["enough"]) == (
        125.5,
        -774.5,
        774.5,
        False,
    )
    assert report["short_in_calls"] == {"ultra": 97, "core": 259}
    assert (report["organization"], report["overrides"], report["no_balance"]) == (
        None,
        None,
        None,
    )


def test_without_a_key_it_prints_the_cost_alone(env: dict[str, str], api: StandInAPI) -> None:
    keyless = {name: value for name, value in env.items() if name != "STABILITY_API_KEY"}
    done = cli(keyless, "estimate", "100", "ultra", "20", "core")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines()[-2:] == [
        "total                 860.00",
        "No balance read (STABILITY_API_KEY is not set): the cost alone.",
    ]
    report = json.loads(cli(keyless, "estimate", "1", "core", "--json").stdout)
    assert (report["balance"], report["enough"], report["no_balance"]) == (
        None,
        None,
        "STABILITY_API_KEY is not set",
    )
    # --min-credits asks for the balance: without a key that is a usage error.
    asked = cli(keyless, "estimate", "1", "core", "--min-credits", "5")
    assert (asked.returncode, asked.stdout) == (2, "")
    assert "STABILITY_API_KEY is not set" in asked.stderr
    assert api.requests == []


def test_a_balance_that_cannot_be_read_is_exit_1_after_the_cost(
    env: dict[str, str], api: StandInAPI
) -> None:
    api.inject_error(500, endpoint="balance", times=None, message="upstream is down")
    done = cli(env, "estimate", "10", "core", "--timeout", "5")
    assert done.returncode == 1
    assert done.stdout.splitlines()[-2] == "total                 30.00"
    assert done.stderr == (
        "stability-user: error: InternalServerError (HTTP 500): upstream is down\n"
    )


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        (["10", "ultr"], "stability-user: error: Unknown service 'ultr': did you mean ultra?\n"),
        (
            ["10", "sd3.5"],
            "stability-user: error: Unknown service 'sd3.5': did you mean sd3.5-large or "
            "sd3.5-flash?\n",
        ),
        (
            ["-1", "ultra"],
            "stability-user: error: the count of ultra must be a whole number from 0 to "
            "1,000,000,000, not '-1'\n",
        ),
        (
            ["2.5", "ultra"],
            "stability-user: error: the count of ultra must be a whole number from 0 to "
            "1,000,000,000, not '2.5'\n",
        ),
        (
            ["ten", "ultra"],
            "stability-user: error: the count of ultra must be a whole number from 0 to "
            "1,000,000,000, not 'ten'\n",
        ),
        (
            ["1e400", "ultra"],
            "stability-user: error: the count of ultra must be a whole number from 0 to "
            "1,000,000,000, not '1e400'\n",
        ),
        (
            ["99999999999", "ultra"],
            "stability-user: error: the count of ultra must be a whole number from 0 to "
            "1,000,000,000, not '99999999999'\n",
        ),
        (
            ["10", "ultra", "20"],
            "stability-user: error: give the plan as COUNT NAME pairs, such as 100 ultra 20 core\n",
        ),
    ],
)
def test_a_plan_it_cannot_read_is_exit_2_and_nothing_is_sent(
    env: dict[str, str], api: StandInAPI, plan: list[str], message: str
) -> None:
    done = cli(env, "estimate", *plan)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", message)
    assert api.requests == []


def test_your_own_prices_change_the_total_and_say_so(env: dict[str, str], tmp_path: Path) -> None:
    rates = tmp_path / "prices.toml"
    rates.write_text("[prices]\nultra = 7.5\n")
    done = cli({**env, "STABILITY_PRICES": str(rates)}, "estimate", "100", "ultra", "20", "core")
    assert done.returncode == 3
    assert done.stdout.splitlines()[1:5] == [
        "ultra    100    7.5   750.00",
        "core     20     3     60.00",
        "total                 810.00",
        f"Your prices from STABILITY_PRICES={rates}: ultra.",
    ]
    report = json.loads(
        cli({**env, "STABILITY_PRICES": str(rates)}, "estimate", "1", "ultra", "--json").stdout
    )
    assert (report["total"], report["overrides"], report["lines"][0]["overridden"]) == (
        7.5,
        str(rates),
        True,
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (None, "cannot be read: No such file or directory."),
        ("[prices\n", "is not TOML ("),
        ("[prices]\nultr = 7\n", "names no service 'ultr': did you mean ultra?"),
        ("[prices]\nultra = -7\n", "ultra = -7: a price must be a number of credits from 0.0001"),
    ],
)
def test_a_rates_file_it_cannot_use_is_exit_2(
    env: dict[str, str], api: StandInAPI, tmp_path: Path, text: str | None, problem: str
) -> None:
    rates = tmp_path / "prices.toml"
    if text is not None:
        rates.write_text(text)
    for args in (("estimate", "1", "core"), ("prices",), ("balance", "--as", "core")):
        done = cli({**env, "STABILITY_PRICES": str(rates)}, *args)
        assert done.returncode == 2, args
        assert f"STABILITY_PRICES={rates}: {problem}" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    assert api.requests == []


# -- prices -------------------------------------------------------------------------------------


def test_prices_lists_the_catalogue_with_its_document(env: dict[str, str]) -> None:
    done = cli(env, "prices")
    assert (done.returncode, done.stderr) == (0, "")
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["SERVICE", "ENDPOINT", "MODEL", "CREDITS"]
    rows = {tuple(line.split()[:5]) for line in lines[1:31]}
    assert ("ultra", "POST", "/v2beta/stable-image/generate/ultra", "-", "8") in rows
    assert (
        "sd3.5-flash",
        "POST",
        "/v2beta/stable-image/generate/sd3",
        "sd3.5-flash",
        "2.5",
    ) in rows
    audio = next(line for line in lines if "stable-audio-2/text-to-audio" in line)
    assert audio.endswith("17 + 0.06 * steps (20 at 50 steps)")
    assert lines[31].startswith(
        "Credits per successful result (failed calls are free), from Stability's "
        "stability-v2beta.openapi.json copied 2026-12-07 (sha256 "
    )
    assert lines[32] == "Not priced in the document:"
    assert "  POST /v2alpha/generation/stable-image/upscale (priced in cents instead)" in lines


def test_prices_of_some_names_and_as_json(env: dict[str, str], tmp_path: Path) -> None:
    done = cli(env, "prices", "core", "/v2beta/stable-image/generate/sd3", "--json")
    assert done.returncode == 0
    listed = json.loads(done.stdout)
    assert [(p["name"], p["credits"], p["model"]) for p in listed] == [
        ("core", 3.0, None),
        ("sd3.5-large", 6.5, "sd3.5-large"),
        ("sd3.5-large-turbo", 4.0, "sd3.5-large-turbo"),
        ("sd3.5-medium", 3.5, "sd3.5-medium"),
        ("sd3.5-flash", 2.5, "sd3.5-flash"),
    ]
    assert {"name", "credits", "method", "path", "model", "formula"} <= set(listed[0])
    unknown = cli(env, "prices", "ultr")
    assert (unknown.returncode, unknown.stdout) == (2, "")
    assert unknown.stderr == "stability-user: error: Unknown service 'ultr': did you mean ultra?\n"
    rates = tmp_path / "prices.toml"
    rates.write_text("[prices]\nultra = 7.5\n")
    yours = cli({**env, "STABILITY_PRICES": str(rates)}, "prices", "ultra")
    assert yours.stdout.splitlines()[1].endswith("7.5 (yours; the document: 8)")
    assert yours.stdout.splitlines()[-1] == f"Your prices from STABILITY_PRICES={rates}: ultra."


# -- a balance in calls -------------------------------------------------------------------------


def test_balance_and_balances_as_calls_of_a_service(env: dict[str, str], tmp_path: Path) -> None:
    done = cli(env, "balance", "--as", "ultra", "--as", "core")
    assert (done.returncode, done.stdout) == (
        0,
        "125.50 credits (default organization): 15 ultra or 41 core calls\n",
    )
    assert json.loads(cli(env, "balance", "--as", "ultra", "--json").stdout) == {
        "organization": None,
        "credits": 125.5,
        "calls": {"ultra": 15},
        "overrides": None,
    }
    table = cli(env, "balances", "--as", "sd3.5-medium")
    assert table.stdout.splitlines() == [
        "ORGANIZATION            NAME          ROLE    CREDITS  sd3.5-medium calls",
        "org-standin-personal *  Ada's studio  OWNER   125.50   35",
        "org-standin-lumen       Lumen Games   MEMBER  42.00    12",
        "org-standin-lab         Research Lab  ADMIN   3.25     0",
        "* default organization",
    ]
    rates = tmp_path / "prices.toml"
    rates.write_text("[prices]\nultra = 10\n")
    yours = cli({**env, "STABILITY_PRICES": str(rates)}, "balance", "--as", "ultra")
    assert yours.stdout.splitlines() == [
        "125.50 credits (default organization): 12 ultra calls",
        f"Your prices from STABILITY_PRICES={rates}: ultra.",
    ]
    listed = json.loads(
        cli({**env, "STABILITY_PRICES": str(rates)}, "balances", "--as", "ultra", "--json").stdout
    )
    assert [(entry["calls"], entry["overrides"]) for entry in listed] == [
        ({"ultra": 12}, str(rates)),
        ({"ultra": 4}, str(rates)),
        ({"ultra": 0}, str(rates)),
    ]
    wrong = cli(env, "balance", "--as", "ultr")
    assert wrong.returncode == 2
    assert "argument --as: Unknown service 'ultr': did you mean ultra?" in wrong.stderr


# -- measure --expect ---------------------------------------------------------------------------


def test_measure_expect_around_ten_real_calls(
    env: dict[str, str], api: StandInAPI, tmp_path: Path
) -> None:
    record = tmp_path / "spend.json"
    done = cli(
        env,
        "measure",
        "--expect",
        "10 core",
        "--json",
        str(record),
        "--",
        sys.executable,
        "-c",
        BATCH,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith(
        "stability-user: spent 30.00 credits against 30.00 expected (10 core, +0.0%) "
        "(125.50 -> 95.50, default organization) in "
    ), done.stderr
    assert done.stderr.endswith(" s; the command exited with status 0\n")
    written = json.loads(record.read_text())
    assert written["credits"] == 30.0
    assert written["expected"]["total"] == 30.0
    assert written["expected"]["plan"] == "10 core"
    assert (written["expected"]["difference"], written["expected"]["difference_percent"]) == (
        0.0,
        0.0,
    )
    generations = [request for request in api.requests if request.path == CORE]
    assert len(generations) == 11  # ten charged, one refused and free


def test_measure_expect_says_how_far_off_the_spend_is(env: dict[str, str]) -> None:
    spend = shlex.join([sys.executable, "-m", "stability_user.testing", "spend", "4"])
    done = cli(env, "measure", "--expect", "1 core", "--", "sh", "-c", spend)
    assert done.returncode == 0
    assert "spent 4.00 credits against 3.00 expected (1 core, +33.3%)" in done.stderr


def test_measure_expect_with_min_credits_starts_only_when_the_balance_covers_both(
    env: dict[str, str], tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    done = cli(
        env,
        "measure",
        "--expect",
        "10 core",
        "--min-credits",
        "100",
        "--",
        "touch",
        str(marker),
    )
    assert done.returncode == 3
    assert done.stderr == (
        "stability-user: below --min-credits 100.00 plus the expected 30.00 (10 core): "
        "125.50 credits; the command was not started\n"
    )
    assert not marker.exists()
    done = cli(
        env, "measure", "--expect", "10 core", "--min-credits", "95", "--", "touch", str(marker)
    )
    assert done.returncode == 0
    assert marker.exists()


def test_measure_expect_it_cannot_read_is_exit_2_before_anything_runs(
    env: dict[str, str], api: StandInAPI, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    done = cli(env, "measure", "--expect", "10 cor", "--", "touch", str(marker))
    assert (done.returncode, done.stderr) == (
        2,
        "stability-user: error: Unknown service 'cor': did you mean core?\n",
    )
    assert not marker.exists()
    assert api.requests == []


def test_a_catalogue_that_cannot_be_read_is_an_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from stability_user._cli import main
    from stability_user.prices import _catalogue

    missing = tmp_path / "catalogue.json"
    monkeypatch.setattr(_catalogue, "CATALOGUE_FILE", str(missing))
    monkeypatch.setattr(_catalogue, "_loaded", [])
    assert main(["prices"]) == 1
    assert capsys.readouterr().err == (
        f"stability-user: error: StabilityError: The price catalogue {missing} cannot be read "
        "(No such file or directory): reinstall stability-user.\n"
    )
    monkeypatch.setenv("STABILITY_API_KEY", SAMPLE_API_KEY)
    with pytest.raises(SystemExit) as usage:
        main(["balance", "--as", "ultra"])
    assert usage.value.code == 2
    assert f"The price catalogue {missing} cannot be read" in capsys.readouterr().err


def test_one_call_is_said_in_the_singular() -> None:
    from stability_user._cli._prices import calls_text

    assert calls_text({"ultra": 1}) == "1 ultra call"
    assert calls_text({"ultra": 0}) == "0 ultra calls"
    assert calls_text({"ultra": 1, "core": 2}) == "1 ultra or 2 core calls"
