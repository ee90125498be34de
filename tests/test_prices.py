"""``stability_user.prices``: prices by name or path, estimates summed exactly, a balance in
calls, your own rates from ``STABILITY_PRICES``, and ``require_credits()`` of an estimate."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import pickle
from pathlib import Path

import pytest

import stability_user
from stability_user import (
    AsyncStabilityUser,
    ConfigurationError,
    InsufficientCreditsError,
    StabilityError,
    StabilityUser,
)
from stability_user.prices import (
    MAX_COUNT,
    _catalogue,
    _overrides,
    calls_for,
    catalogue,
    estimate,
    price,
)
from stability_user.testing import SAMPLE_API_KEY, StandInAPI

pytestmark = pytest.mark.timeout(10)

SD3 = "/v2beta/stable-image/generate/sd3"


@pytest.fixture
def rates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``STABILITY_PRICES`` file, with no rates until a test writes some."""
    path = tmp_path / "prices.toml"
    path.write_text("[prices]\n")
    monkeypatch.setenv("STABILITY_PRICES", str(path))
    return path


def write(path: Path, text: str) -> None:
    path.write_text(text)
    os.utime(path, ns=(0, path.stat().st_mtime_ns + 1_000_000))  # a change a stat sees


# -- prices -------------------------------------------------------------------------------------


def test_a_price_by_name() -> None:
    ultra = price("ultra")
    assert (ultra.name, ultra.credits, ultra.method, ultra.path) == (
        "ultra",
        8.0,
        "POST",
        "/v2beta/stable-image/generate/ultra",
    )
    assert (ultra.model, ultra.formula, ultra.parameter_value, ultra.overridden) == (
        None,
        None,
        None,
        False,
    )
    assert ultra.source == "stability-v2beta.openapi.json"
    assert ultra.stated == "The Ultra service uses 8 credits per successful result."


def test_stable_audio_2_is_priced_by_its_steps() -> None:
    assert price("stable-audio-2", steps=100).credits == 23
    default = price("stable-audio-2")
    assert (default.credits, default.parameter_value) == (20.0, 50)
    assert default.formula is not None
    assert str(default.formula) == "17 + 0.06 * steps"
    assert (default.formula.parameter, default.formula.default) == ("steps", 50)
    assert price("stable-audio-2", steps=30).credits == 18.8  # not 18.799999999999997
    assert price("stable-audio-2.5").credits == 20.0
    assert price("stable-audio-3").credits == 26.0


def test_a_path_gives_its_default_model_or_the_model_asked_for() -> None:
    assert (price(SD3).name, price(SD3).credits) == ("sd3.5-large", 6.5)
    assert price(SD3, model="sd3.5-flash").credits == 2.5
    assert price("/v2beta/stable-image/generate/core").name == "core"
    assert price("/v2beta/audio/stable-audio-2/inpaint").name == "stable-audio-2.5"
    assert price("/v2beta/audio/stable-audio-2/audio-to-audio", steps=100).credits == 23
    assert price("sd3.5-medium", model="sd3.5-medium").credits == 3.5


def test_the_catalogue_lists_every_price_once_per_endpoint_and_model() -> None:
    found = catalogue()
    assert len(found.prices) == 30
    assert len(found.names) == 25
    assert found.names[:3] == ("stable-fast-3d", "stable-point-aware-3d", "stable-audio-2")
    assert found.overrides is None
    assert found.document.url == "https://api.stability.ai/v2alpha/openapi"
    assert len(found.document.sha256) == 64
    assert {(item.method, item.path) for item in found.not_priced} >= {
        ("GET", "/v2beta/results/{id}")
    }
    for each in found.prices:
        assert price(each.name).credits == each.credits


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: price("ultr"), "Unknown service 'ultr': did you mean ultra?"),
        (lambda: price("sd3.5"), "Unknown service 'sd3.5': did you mean "),
        (lambda: price("xyzzy"), "Unknown service 'xyzzy'; the services are stable-fast-3d, "),
        (lambda: price("/v2beta/nowhere"), "Unknown service '/v2beta/nowhere'"),
        (lambda: price(8), "A service is named by a str, not int."),  # type: ignore[arg-type]
        (lambda: price("ultra", steps=100), "ultra takes no parameters, not steps."),
        (lambda: price("stable-audio-2", duration=10), "stable-audio-2 takes steps, not duration."),
        (lambda: price("stable-audio-2", steps=0), "steps must be a whole number from 1 to"),
        (lambda: price("stable-audio-2", steps=2.5), "steps must be a whole number from 1 to"),
        (lambda: price("stable-audio-2", steps=True), "steps must be a whole number from 1 to"),
        (lambda: price("stable-audio-2", steps=10**7), "steps must be a whole number from 1 to"),
        (lambda: price(SD3, model="sd3.5-huge"), f"{SD3} has no price for model 'sd3.5-huge': its"),
        (lambda: price(SD3, model=3), "model must be a str, not int."),
        (lambda: price("ultra", model="sd3.5-large"), "ultra is priced without a model, not"),
        (lambda: price("sd3.5-large", model="sd3.5-medium"), "sd3.5-large is model sd3.5-large"),
    ],
)
def test_a_name_or_parameter_it_does_not_know_is_a_configuration_error(
    call: object, message: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        call()  # type: ignore[operator]
    assert str(caught.value).startswith(message), str(caught.value)


def test_a_path_priced_by_model_without_a_default_asks_for_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json

    with open(_catalogue.CATALOGUE_FILE, "rb") as file:
        raw = json.loads(file.read())
    for entry in raw["prices"]:
        entry["default_model"] = False  # a document whose model property has no default
    monkeypatch.setattr(_catalogue, "_loaded", [_catalogue._Data(raw)])
    with pytest.raises(ConfigurationError) as caught:
        price(SD3)
    assert str(caught.value) == (
        f"{SD3} is priced by model: give model= one of sd3.5-large, sd3.5-large-turbo, "
        "sd3.5-medium, sd3.5-flash."
    )
    assert price(SD3, model="sd3.5-medium").credits == 3.5
    assert price("/v2beta/stable-image/generate/core").credits == 3.0  # one entry: that one


def test_prices_are_frozen_values() -> None:
    ultra = price("ultra")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ultra.credits = 1.0  # type: ignore[misc]
    assert price("ultra") == ultra
    assert hash(price("ultra")) == hash(ultra)
    assert pickle.loads(pickle.dumps(ultra)) == ultra
    assert ultra.to_dict()["formula"] is None
    formula = price("stable-audio-2").formula
    assert formula is not None
    assert formula.to_dict() == {
        "text": "17 + 0.06 * steps",
        "base": 17.0,
        "rate": 0.06,
        "parameter": "steps",
        "default": 50,
    }
    audio = price("stable-audio-2", steps=100).to_dict()
    assert (audio["formula"], audio["parameter"], audio["default"], audio["parameter_value"]) == (
        "17 + 0.06 * steps",
        "steps",
        50,
        100,
    )


# -- estimates ----------------------------------------------------------------------------------


def test_an_estimate_of_a_plan() -> None:
    plan = estimate({"ultra": 100, "core": 20})
    assert plan.total == 860.0
    assert [(line.name, line.count, line.credits_each, line.credits) for line in plan.lines] == [
        ("ultra", 100, 8.0, 800.0),
        ("core", 20, 3.0, 60.0),
    ]
    assert plan.plan == "100 ultra + 20 core"
    assert str(plan) == "100 ultra + 20 core: 860.00 credits"
    assert not plan.overridden
    assert plan.to_dict()["lines"][0]["path"] == "/v2beta/stable-image/generate/ultra"
    assert pickle.loads(pickle.dumps(plan)) == plan


def test_pairs_words_and_prices_at_other_parameters() -> None:
    assert estimate([("ultra", 100), ("core", 20)]) == estimate({"ultra": 100, "core": 20})
    assert estimate("100 ultra 20 core") == estimate({"ultra": 100, "core": 20})
    louder = estimate([(price("stable-audio-2", steps=100), 10), ("stable-audio-2", 1)])
    assert [line.credits for line in louder.lines] == [230.0, 20.0]
    assert louder.plan == "10 stable-audio-2 at 100 steps + 1 stable-audio-2"
    assert estimate({SD3: 2}).lines[0].name == "sd3.5-large"


def test_a_service_named_twice_adds_up() -> None:
    plan = estimate([("core", 10), ("ultra", 1), ("core", 5)])
    assert [(line.name, line.count) for line in plan.lines] == [("core", 15), ("ultra", 1)]
    assert plan.total == 53.0
    assert estimate({"core": 0}).total == 0.0


def test_totals_are_summed_exactly(rates: Path) -> None:
    assert estimate({"sd3.5-large": 3}).total == 19.5
    assert estimate({"stable-audio-2": 7}).total == 140.0
    write(rates, "[prices]\nerase = 0.1\nsketch = 0.2\n")
    plan = estimate({"erase": 7, "sketch": 1})
    assert [line.credits for line in plan.lines] == [0.7, 0.2]  # not 0.7000000000000001
    assert plan.total == 0.9  # not 0.8999999999999999
    assert estimate({"erase": MAX_COUNT}).total == 100_000_000.0


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        (
            {"ultra": -1},
            "The count of ultra must be a whole number from 0 to 1,000,000,000, not -1.",
        ),
        (
            {"ultra": 2.5},
            "The count of ultra must be a whole number from 0 to 1,000,000,000, not 2.5.",
        ),
        (
            {"ultra": "ten"},
            "The count of ultra must be a whole number from 0 to 1,000,000,000, not 'ten'.",
        ),
        (
            {"ultra": True},
            "The count of ultra must be a whole number from 0 to 1,000,000,000, not True.",
        ),
        (
            {"ultra": math.inf},
            "The count of ultra must be a whole number from 0 to 1,000,000,000, not inf.",
        ),
        (
            {"ultra": 10**400},
            "The count of ultra must be a whole number from 0 to 1,000,000,000, not 1000",
        ),
        ([("ultra", MAX_COUNT), ("ultra", 1)], "The count of ultra must be a whole number from 0"),
        (
            "100 ultra 1e400 core",
            "The count of core must be a whole number from 0 to 1,000,000,000, not '1e400'.",
        ),
        (
            "-5 ultra",
            "The count of ultra must be a whole number from 0 to 1,000,000,000, not '-5'.",
        ),
        (
            "2.5 ultra",
            "The count of ultra must be a whole number from 0 to 1,000,000,000, not '2.5'.",
        ),
        (
            "100 ultra 20",
            "A plan is COUNT NAME pairs, such as '100 ultra 20 core', not '100 ultra 20'.",
        ),
        ({}, "A plan names at least one service."),
        ("", "A plan is COUNT NAME pairs"),
        ([("ultra", 1, 2)], "A plan's pairs are (name, count), not ('ultra', 1, 2)."),
        (7, "A plan is a mapping of names to counts, pairs or words, not int."),
        ({"ultr": 1}, "Unknown service 'ultr': did you mean ultra?"),
    ],
)
def test_a_plan_it_cannot_count_is_a_configuration_error(plan: object, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        estimate(plan)  # type: ignore[arg-type]
    assert str(caught.value).startswith(message), str(caught.value)


# -- a balance in calls -------------------------------------------------------------------------


def test_calls_for_says_how_many_whole_calls_a_balance_pays_for(rates: Path) -> None:
    assert calls_for(125.5, "core") == 41
    assert calls_for(125.5, "ultra") == 15
    assert calls_for(8, "ultra") == 1
    assert calls_for(7.99, "ultra") == 0
    assert calls_for(0, "ultra") == calls_for(-3, "ultra") == 0
    assert calls_for(46, "stable-audio-2", steps=100) == 2
    assert calls_for(46, price("stable-audio-2", steps=100)) == 2
    write(rates, "[prices]\nerase = 0.1\n")
    assert calls_for(0.3, "erase") == 3  # 0.3 / 0.1 is 2.9999999999999996 in floats
    # Exact however large: 10**30 credits is 1.25 * 10**29 Ultra calls (the default decimal
    # context's 28 digits raised DivisionImpossible).
    assert calls_for(1e30, "ultra") == 125_000_000_000_000_000_000_000_000_000
    assert calls_for(1.7e308, "erase") == 17 * 10**308  # 0.1 credits each


@pytest.mark.parametrize("credits", [math.inf, math.nan, "10", None, True, 10**400])
def test_calls_for_takes_a_finite_number(credits: object) -> None:
    with pytest.raises(ConfigurationError, match="credits must be a finite number"):
        calls_for(credits, "ultra")  # type: ignore[arg-type]


def test_a_price_carries_its_parameters() -> None:
    with pytest.raises(ConfigurationError, match="A Price carries its parameters"):
        calls_for(10, price("ultra"), steps=3)


# -- your own rates -----------------------------------------------------------------------------


def test_your_own_rates_replace_the_catalogue_and_say_so(rates: Path) -> None:
    write(rates, '[prices]\nultra = 7.5\n"stable-audio-2" = 18\n')
    ultra = price("ultra")
    assert (ultra.credits, ultra.overridden, ultra.source) == (7.5, True, str(rates))
    assert ultra.stated == "The Ultra service uses 8 credits per successful result."
    audio = price("stable-audio-2", steps=100)  # an override is flat
    assert (audio.credits, audio.formula, audio.parameter_value) == (18.0, None, None)
    assert price("core").overridden is False
    plan = estimate({"ultra": 100, "core": 20})
    assert (plan.total, plan.overridden) == (810.0, True)
    found = catalogue()
    assert found.overrides == str(rates)
    assert [p.credits for p in found.prices if p.name == "ultra"] == [7.5]
    assert [p.credits for p in catalogue(overrides=False).prices if p.name == "ultra"] == [8.0]
    write(rates, "[prices]\nultra = 9\n")  # read again when it changes
    assert price("ultra").credits == 9.0


def test_an_empty_variable_means_no_rates_of_your_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STABILITY_PRICES", "")
    assert price("ultra").credits == 8.0
    assert catalogue().overrides is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[prices]\nultr = 7\n", "names no service 'ultr': did you mean ultra?"),
        (
            '[prices]\n"/v2beta/stable-image/generate/ultra" = 1\n',
            "names no service '/v2beta/stable-image/generate/ultra': a rate is given by its "
            "service's name, not by an endpoint's path.",
        ),
        (
            "[prices]\nultra = -1\n",
            "ultra = -1: a price must be a number of credits from 0.0001 to 1,000,000.",
        ),
        (
            "[prices]\nultra = 0\n",
            "ultra = 0: a price must be a number of credits from 0.0001 to 1,000,000.",
        ),
        (
            "[prices]\nultra = inf\n",
            "ultra = inf: a price must be a number of credits from 0.0001 to 1,000,000.",
        ),
        (
            "[prices]\nultra = nan\n",
            "ultra = nan: a price must be a number of credits from 0.0001 to 1,000,000.",
        ),
        (
            "[prices]\nultra = true\n",
            "ultra = True: a price must be a number of credits from 0.0001 to 1,000,000.",
        ),
        (
            "[prices]\nultra = '8'\n",
            "ultra = '8': a price must be a number of credits from 0.0001 to 1,000,000.",
        ),
        (f"[prices]\nultra = {'9' * 400}\n", f"ultra = {'9' * 400}: a price must be a number"),
        ("[prices]\nultra = 1e-300\n", "ultra = 1e-300: a price must be a number of credits from"),
        ("[prices]\nultra = 1e308\n", "ultra = 1e+308: a price must be a number of credits from"),
        ("ultra = 8\n", "holds ultra: only a [prices] table of name = credits."),
        ("prices = 8\n", "has no [prices] table of name = credits."),
        ("", "has no [prices] table of name = credits."),
        (
            "[prices\n",
            "is not TOML (Expected ']' at the end of a table declaration (at line 1, column 8)).",
        ),
        (b"\xff\xfe", "is not TOML ("),
    ],
)
def test_a_rates_file_it_cannot_use_is_a_configuration_error(
    rates: Path, text: str | bytes, problem: str
) -> None:
    if isinstance(text, bytes):
        rates.write_bytes(text)
    else:
        write(rates, text)
    for call in (lambda: price("core"), lambda: estimate({"core": 1}), catalogue):
        with pytest.raises(ConfigurationError) as caught:
            call()
        assert str(caught.value).startswith(f"STABILITY_PRICES={rates}: {problem}"), caught.value


def test_a_rates_file_that_is_missing_or_unreadable_is_a_configuration_error(
    rates: Path,
) -> None:
    rates.unlink()
    with pytest.raises(ConfigurationError) as caught:
        price("ultra")
    assert str(caught.value) == (
        f"STABILITY_PRICES={rates}: cannot be read: No such file or directory."
    )
    rates.mkdir()
    with pytest.raises(ConfigurationError, match=r"=\S+: is not a regular file\.$"):
        price("ultra")
    rates.rmdir()
    # A FIFO named by mistake is refused, never waited on (nothing writes to it here).
    os.mkfifo(rates)
    with pytest.raises(ConfigurationError, match=r"=\S+: is not a regular file\.$"):
        price("ultra")
    rates.unlink()
    rates.write_text("[prices]\n" + "#" * (1024 * 1024) + "\n")
    with pytest.raises(ConfigurationError, match=r"=\S+: is larger than 1,048,576 bytes\.$"):
        price("ultra")


def test_a_catalogue_file_that_is_missing_or_broken_is_an_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "catalogue.json"
    monkeypatch.setattr(_catalogue, "CATALOGUE_FILE", str(missing))
    monkeypatch.setattr(_catalogue, "_loaded", [])
    with pytest.raises(StabilityError) as caught:
        price("ultra")
    assert str(caught.value) == (
        f"The price catalogue {missing} cannot be read (No such file or directory): "
        "reinstall stability-user."
    )
    assert not isinstance(caught.value, ConfigurationError)
    missing.write_text('{"document": {}}')
    with pytest.raises(StabilityError, match=r"cannot be read \(KeyError: 'file'\)"):
        catalogue()
    missing.write_text("{")
    with pytest.raises(StabilityError, match=r"cannot be read \(JSONDecodeError: "):
        catalogue()


def test_rates_are_read_again_only_when_the_file_changes(rates: Path) -> None:
    write(rates, "[prices]\nultra = 7\n")
    assert price("ultra").credits == 7.0
    assert len(_overrides._cache) == 1
    (stamp,) = _overrides._cache
    assert price("core").credits == 3.0
    assert list(_overrides._cache) == [stamp]


# -- require_credits() of an estimate -----------------------------------------------------------


def test_require_credits_takes_an_estimate_and_names_its_plan() -> None:
    api = StandInAPI.sample()
    with StabilityUser(SAMPLE_API_KEY, transport=api.transport) as client:
        assert client.require_credits(estimate({"core": 10})).credits == 125.5
        plan = estimate({"ultra": 100, "core": 20})
        with pytest.raises(InsufficientCreditsError) as caught:
            client.require_credits(plan, "org-standin-lumen")
    error = caught.value
    assert str(error) == (
        "Organization org-standin-lumen has 42.00 credits; 860.00 are required for "
        "100 ultra + 20 core."
    )
    assert (error.required, error.available, error.organization) == (
        860.0,
        42.0,
        "org-standin-lumen",
    )
    assert error.estimate == plan
    copied = pickle.loads(pickle.dumps(error))
    assert copied.estimate == plan
    with (
        StabilityUser(SAMPLE_API_KEY, transport=api.transport) as client,
        pytest.raises(InsufficientCreditsError) as plain,
    ):
        client.require_credits(50, "org-standin-lab")
    assert plain.value.estimate is None
    assert str(plain.value).endswith("50.00 are required.")


def test_require_credits_of_an_estimate_async_and_module_level(
    standin_server: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    url: str = standin_server.url  # type: ignore[attr-defined]
    plan = estimate({"sd3.5-large": 20})  # 130 credits: more than the 125.50

    async def main() -> str:
        async with AsyncStabilityUser(SAMPLE_API_KEY, base_url=url) as client:
            assert (await client.require_credits(estimate({"core": 41}))).credits == 125.5
            try:
                await client.require_credits(plan)
            except InsufficientCreditsError as error:
                return str(error)
        return ""

    assert asyncio.run(main()) == (
        "The default organization has 125.50 credits; 130.00 are required for 20 sd3.5-large."
    )
    monkeypatch.setenv("STABILITY_API_KEY", SAMPLE_API_KEY)
    monkeypatch.setenv("STABILITY_BASE_URL", url)
    with pytest.raises(InsufficientCreditsError, match=r"for 20 sd3\.5-large"):
        stability_user.require_credits(plan)
    assert stability_user.require_credits(estimate("1 ultra")).credits == 125.5


def test_a_number_never_loads_the_prices() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from stability_user import StabilityUser\n"
        "from stability_user.testing import SAMPLE_API_KEY, StandInAPI\n"
        "client = StabilityUser(SAMPLE_API_KEY, transport=StandInAPI.sample().transport)\n"
        "client.require_credits(5)\n"
        "print('stability_user.prices' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )
    assert done.stdout == "False\n"
