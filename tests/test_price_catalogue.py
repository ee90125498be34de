"""``scripts/price_catalogue.py``, the step of ``make generate`` that reads Stability's prices from
its v2beta document: the figures it gives, what it refuses, and the check that the checked-in
catalogue is the one the vendored document makes."""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from support.doc_blocks import ROOT

pytestmark = pytest.mark.timeout(30)

SCRIPT = ROOT / "scripts" / "price_catalogue.py"
UPSTREAM = ROOT / "spec" / "upstream"
NAME = "stability-v2beta.openapi.json"
CHECKED_IN = ROOT / "facade" / "stability_user" / "prices" / "catalogue.json"
ULTRA = "/v2beta/stable-image/generate/ultra"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("price_catalogue", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["price_catalogue"] = module  # dataclasses and friends look it up
    spec.loader.exec_module(module)
    return module


generator = _load()
DOCUMENT: dict[str, Any] = json.loads((UPSTREAM / NAME).read_text(encoding="utf-8"))

# The table of the reference folder's stability-v2beta-subset.README.md ("Operations and credits
# as stated in their descriptions"), written out: path -> {model: credits per successful result}
# (``None`` for an endpoint priced without a model); the formula of stable-audio-2 below.
STATED: dict[str, dict[str | None, float]] = {
    "/v2beta/3d/stable-fast-3d": {None: 10},
    "/v2beta/3d/stable-point-aware-3d": {None: 4},
    "/v2beta/audio/stable-audio-2/text-to-audio": {"stable-audio-2": 20, "stable-audio-2.5": 20},
    "/v2beta/audio/stable-audio-2/audio-to-audio": {"stable-audio-2": 20, "stable-audio-2.5": 20},
    "/v2beta/audio/stable-audio-2/inpaint": {None: 20},
    "/v2beta/audio/stable-audio/text-to-audio": {"stable-audio-3": 26},
    "/v2beta/audio/stable-audio/audio-to-audio": {"stable-audio-3": 26},
    "/v2beta/audio/stable-audio/inpaint": {"stable-audio-3": 26},
    "/v2beta/stable-image/upscale/conservative": {None: 40},
    "/v2beta/stable-image/upscale/creative": {None: 60},
    "/v2beta/stable-image/upscale/fast": {None: 2},
    "/v2beta/stable-image/edit/erase": {None: 5},
    "/v2beta/stable-image/edit/inpaint": {None: 5},
    "/v2beta/stable-image/edit/outpaint": {None: 4},
    "/v2beta/stable-image/edit/search-and-replace": {None: 5},
    "/v2beta/stable-image/edit/search-and-recolor": {None: 5},
    "/v2beta/stable-image/edit/remove-background": {None: 5},
    "/v2beta/stable-image/edit/replace-background-and-relight": {None: 8},
    ULTRA: {None: 8},
    "/v2beta/stable-image/generate/core": {None: 3},
    "/v2beta/stable-image/generate/sd3": {
        "sd3.5-large": 6.5,
        "sd3.5-large-turbo": 4,
        "sd3.5-medium": 3.5,
        "sd3.5-flash": 2.5,
    },
    "/v2beta/stable-image/control/sketch": {None: 5},
    "/v2beta/stable-image/control/structure": {None: 5},
    "/v2beta/stable-image/control/style": {None: 5},
    "/v2beta/stable-image/control/style-transfer": {None: 8},
}
NOT_STATED = {
    ("POST", "/v2alpha/generation/stable-image/upscale"),
    ("GET", "/v2alpha/generation/stable-image/upscale/result/{id}"),
    ("POST", "/v2alpha/generation/stable-image/inpaint"),
    ("GET", "/v2beta/results/{id}"),
    ("GET", "/v2beta/audio/results/{id}"),
    ("GET", "/v2beta/stable-image/upscale/creative/result/{id}"),
}
# The names people type, as issue 38 lists them.
NAMES = {
    "ultra",
    "core",
    "sd3.5-large",
    "sd3.5-large-turbo",
    "sd3.5-medium",
    "sd3.5-flash",
    "upscale-fast",
    "upscale-conservative",
    "upscale-creative",
    "erase",
    "inpaint",
    "outpaint",
    "search-and-replace",
    "search-and-recolor",
    "remove-background",
    "replace-background-and-relight",
    "sketch",
    "structure",
    "style",
    "style-transfer",
    "stable-fast-3d",
    "stable-point-aware-3d",
    "stable-audio-2",
    "stable-audio-2.5",
    "stable-audio-3",
}


def catalogue_of(document: dict[str, Any]) -> dict[str, Any]:
    catalogue: dict[str, Any] = generator.read_catalogue(json.dumps(document).encode())
    return catalogue


def changed(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    document = copy.deepcopy(DOCUMENT)
    change(document)
    return document


def describe(document: dict[str, Any], path: str, old: str, new: str, method: str = "post") -> None:
    operation = document["paths"][path][method]
    assert old in operation["description"]
    operation["description"] = operation["description"].replace(old, new)


def test_the_vendored_document_gives_exactly_the_stated_figures() -> None:
    raw = (UPSTREAM / NAME).read_bytes()
    catalogue = generator.read_catalogue(raw)
    found: dict[str, dict[str | None, float]] = {}
    for entry in catalogue["prices"]:
        found.setdefault(entry["path"], {})[entry["model"]] = entry["credits"]
        assert entry["method"] == "POST"
        assert entry["free_when_failed"] is True
    assert found == STATED
    assert {(e["method"], e["path"]) for e in catalogue["not_priced"]} == NOT_STATED
    reasons = {e["path"]: e["reason"] for e in catalogue["not_priced"]}
    assert reasons["/v2beta/results/{id}"] == "no Credits section"
    assert (
        "Flat rate of 25 cents per generation."
        in (reasons["/v2alpha/generation/stable-image/upscale"])
    )
    assert catalogue["document"]["sha256"] == hashlib.sha256(raw).hexdigest()
    assert catalogue["unit"] == "per successful result"


def test_stable_audio_2_is_priced_by_its_formula_checked_against_its_examples() -> None:
    catalogue = catalogue_of(DOCUMENT)
    audio = [e for e in catalogue["prices"] if e["name"] == "stable-audio-2"]
    assert [e["path"] for e in audio] == [
        "/v2beta/audio/stable-audio-2/text-to-audio",
        "/v2beta/audio/stable-audio-2/audio-to-audio",
    ]
    for entry in audio:
        assert entry["formula"] == {
            "base": 17,
            "rate": 0.06,
            "parameter": "steps",
            "default": 50,
            "text": "17 + 0.06 * steps",
        }
        assert entry["credits"] == 20
        assert entry["default_model"] is True
    assert "`credits = 17 + 0.06 * steps`" in audio[0]["stated"]


def test_the_names_are_the_ones_people_type_and_each_has_one_price() -> None:
    catalogue = catalogue_of(DOCUMENT)
    assert {entry["name"] for entry in catalogue["prices"]} == NAMES
    by_model = {
        entry["model"]: entry["name"]
        for entry in catalogue["prices"]
        if entry["path"] == "/v2beta/stable-image/generate/sd3"
    }
    assert by_model == {model: model for model in by_model}
    defaults = [e["model"] for e in catalogue["prices"] if e["default_model"]]
    assert "sd3.5-large" in defaults
    stated = {e["name"]: e["stated"] for e in catalogue["prices"]}
    assert stated["ultra"] == "The Ultra service uses 8 credits per successful result."
    assert stated["sd3.5-flash"] == (
        "SD 3.5 Flash: Flat rate of 2.5 credits per successful generation."
    )


def test_the_checked_in_catalogue_is_what_the_vendored_document_makes() -> None:
    sources = json.loads((UPSTREAM / "sources.json").read_text())[NAME]
    expected = generator.catalogue_text(
        generator.read_catalogue(
            (UPSTREAM / NAME).read_bytes(), url=sources["url"], copied=sources["copied"]
        )
    )
    assert CHECKED_IN.read_text(encoding="utf-8") == expected
    assert json.loads(expected)["document"] == {
        "file": NAME,
        "url": "https://api.stability.ai/v2alpha/openapi",
        "copied": sources["copied"],
        "sha256": sources["sha256"],
        "version": "v1+v2beta",
    }


def test_a_price_that_moves_moves_the_catalogue() -> None:
    nine = changed(
        lambda d: describe(
            d, ULTRA, "uses 8 credits per successful", "uses 9 credits per successful"
        )
    )
    ultra = [e for e in catalogue_of(nine)["prices"] if e["name"] == "ultra"]
    assert [e["credits"] for e in ultra] == [9]
    assert generator.price_changes(catalogue_of(DOCUMENT), catalogue_of(nine)) == [
        "generate/ultra: 8 to 9 credits per successful result"
    ]


def test_price_changes_name_what_is_new_gone_or_moved_in_plain_words() -> None:
    def move(document: dict[str, Any]) -> None:
        describe(document, "/v2beta/3d/stable-fast-3d", "Flat rate of 10", "Flat rate of 12")
        for operation in ("text-to-audio", "audio-to-audio"):  # one name, one price: both
            path = f"/v2beta/audio/stable-audio-2/{operation}"
            describe(document, path, "17 + 0.06 * steps", "17 + 0.08 * steps")
            describe(document, path, "- 50 steps = 20", "- 50 steps = 21")
            describe(document, path, "By default, 20", "By default, 21")
            describe(document, path, "- 100 steps = 23", "- 100 steps = 25")
        section = document["paths"]["/v2beta/stable-image/edit/erase"]["post"]
        section["description"] = section["description"].split("### Credits")[0]
        polling = document["paths"]["/v2beta/results/{id}"]["get"]
        polling["description"] += "\n### Credits\nFlat rate of 1 credit per successful result.\n"

    lines = generator.price_changes(catalogue_of(DOCUMENT), catalogue_of(changed(move)))
    assert lines == [  # in the document's order
        "3d/stable-fast-3d: 10 to 12 credits per successful result",
        "newly priced: results/{id}, 1 credit per successful result",
        "stable-audio-2/text-to-audio (stable-audio-2): 17 + 0.06 * steps (20 at 50 steps) to "
        "17 + 0.08 * steps (21 at 50 steps) credits per successful result",
        "stable-audio-2/audio-to-audio (stable-audio-2): 17 + 0.06 * steps (20 at 50 steps) to "
        "17 + 0.08 * steps (21 at 50 steps) credits per successful result",
        "no longer priced: edit/erase",
    ]


@pytest.mark.parametrize(
    ("path", "old", "new", "reason"),
    [
        (
            ULTRA,
            "The Ultra service uses 8 credits per successful result.",
            "The Ultra service costs about 9 credits, give or take.",
            "no price statements where one is read",
        ),
        (
            ULTRA,
            "You will not be charged for failed results.",
            "You will be charged for failed results.",
            "a sentence it cannot read: 'You will be charged for failed results.'",
        ),
        (
            "/v2beta/stable-image/generate/core",
            "Flat rate of 3 credits per successful generation.",
            "Flat rate of 3 credits per successful generation. Flat rate of 4 credits per "
            "successful generation.",
            "2 price statements where one is read",
        ),
        (
            "/v2beta/audio/stable-audio-2/text-to-audio",
            "- 100 steps = 23 credits",
            "- 100 steps = 24 credits",
            "the formula disagrees with its example '- 100 steps = 24 credits'",
        ),
        (
            "/v2beta/audio/stable-audio-2/text-to-audio",
            " [default]",
            "",
            "the formula's examples do not name one default",
        ),
        (
            "/v2beta/stable-image/generate/sd3",
            "**SD 3.5 Flash**",
            "**SD 4 Flash**",
            "the heading 'SD 4 Flash' names no one model",
        ),
        (
            "/v2beta/stable-image/upscale/fast",
            "### Credits\n",
            "### Credits\nSee our pricing page.\n",
            "a sentence it cannot read: 'See our pricing page.'",
        ),
    ],
)
def test_a_credits_section_it_cannot_read_stops_it_naming_the_operation(
    path: str, old: str, new: str, reason: str
) -> None:
    document = changed(lambda d: describe(d, path, old, new))
    with pytest.raises(generator.CatalogueError) as caught:
        catalogue_of(document)
    assert str(caught.value) == f"POST {path}: its Credits section: {reason}"


def test_a_name_with_two_prices_stops_it() -> None:
    def split(document: dict[str, Any]) -> None:
        describe(
            document,
            "/v2beta/audio/stable-audio/inpaint",
            "Flat rate of 26 credits",
            "Flat rate of 27 credits",
        )

    with pytest.raises(generator.CatalogueError, match="the name 'stable-audio-3' has two prices"):
        catalogue_of(changed(split))


def test_what_is_not_a_document_stops_it() -> None:
    with pytest.raises(generator.CatalogueError, match="not JSON"):
        generator.read_catalogue(b"<html>")
    with pytest.raises(generator.CatalogueError, match="not an OpenAPI document"):
        generator.read_catalogue(b'{"openapi": "3.0.3"}')


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_check_fails_until_the_catalogue_is_regenerated(tmp_path: Path) -> None:
    upstream = tmp_path / "upstream"
    shutil.copytree(UPSTREAM, upstream)
    output = tmp_path / "catalogue.json"
    shutil.copy(CHECKED_IN, output)
    where = ("--upstream", str(upstream), "--output", str(output))
    assert run("--check", *where).returncode == 0
    document = changed(
        lambda d: describe(
            d, ULTRA, "uses 8 credits per successful", "uses 9 credits per successful"
        )
    )
    (upstream / NAME).write_text(json.dumps(document, indent=2))
    stale = run("--check", *where)
    assert stale.returncode == 1
    assert '-      "credits": 8,' in stale.stderr
    assert '+      "credits": 9,' in stale.stderr
    assert "is out of date with stability-v2beta.openapi.json: run 'make generate'" in stale.stderr
    assert output.read_bytes() == CHECKED_IN.read_bytes()  # --check writes nothing
    assert run(*where).returncode == 0
    assert run("--check", *where).returncode == 0
    ultra = [e for e in json.loads(output.read_text())["prices"] if e["name"] == "ultra"]
    assert ultra[0]["credits"] == 9


def test_an_unreadable_section_writes_nothing_and_exits_1(tmp_path: Path) -> None:
    upstream = tmp_path / "upstream"
    shutil.copytree(UPSTREAM, upstream)
    output = tmp_path / "catalogue.json"
    document = changed(
        lambda d: describe(d, ULTRA, "uses 8 credits per successful result", "uses credits")
    )
    (upstream / NAME).write_text(json.dumps(document))
    done = run("--upstream", str(upstream), "--output", str(output))
    assert done.returncode == 1
    assert done.stderr == (
        f"price catalogue: {NAME}: POST {ULTRA}: its Credits section: no price statements where "
        "one is read; nothing written\n"
    )
    assert not output.exists()


def test_make_generate_writes_it_and_check_generated_checks_it() -> None:
    for target, line in (
        ("generate", "scripts/price_catalogue.py"),
        ("check-generated", "scripts/price_catalogue.py --check"),
    ):
        done = subprocess.run(
            ["make", "-n", target], cwd=ROOT, capture_output=True, text=True, check=True, timeout=30
        )
        assert any(each.strip().endswith(line) for each in done.stdout.splitlines()), done.stdout


def test_the_prices_page_shows_the_catalogue_the_package_reads() -> None:
    from stability_user.prices import catalogue

    spec = importlib.util.spec_from_file_location("docs_script", ROOT / "scripts" / "docs.py")
    assert spec is not None
    assert spec.loader is not None
    docs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(docs)
    table = docs.prices_table(json.loads(CHECKED_IN.read_text(encoding="utf-8")))
    rows = [
        [cell.strip().strip("`") for cell in line.strip("|").split("|")]
        for line in table.splitlines()
        if line.startswith("| `")
    ]
    shown = [
        (name, endpoint, model or None, float(credits.rpartition("(")[2].split()[0]))
        for name, endpoint, model, credits in rows
    ]
    found = catalogue(overrides=False)
    assert shown == [(p.name, f"{p.method} {p.path}", p.model, p.credits) for p in found.prices]
    assert f"(SHA-256 `{found.document.sha256}`)" in table
    page = (ROOT / "docs" / "prices.md").read_text(encoding="utf-8")
    assert '\n--8<-- "build/docs/prices-table.md"\n' in page
