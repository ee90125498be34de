"""The stand-in's generation endpoints: taken as Stability's v2beta document describes them,
answering real files, and charging the catalogue's price per successful result (nothing for a
call it refuses or fails)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import struct
import wave
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from PIL import Image

from stability_user import AsyncStabilityUser, StabilityUser
from stability_user.prices import estimate, price
from stability_user.testing import SAMPLE_API_KEY, StandInAPI, StandInServer
from stability_user.testing._generations import GENERATIONS
from support.doc_blocks import ROOT

DOCUMENT: dict[str, Any] = json.loads(
    (ROOT / "spec" / "upstream" / "stability-v2beta.openapi.json").read_text(encoding="utf-8")
)
CORE = "/v2beta/stable-image/generate/core"
SD3 = "/v2beta/stable-image/generate/sd3"
AUDIO = "/v2beta/audio/stable-audio-2/text-to-audio"
KEY = {"Authorization": f"Bearer {SAMPLE_API_KEY}"}
# What the document says of an operation answered later, by polling for its id.
ASYNCHRONOUS = re.compile(r"results/\{id\}|asynchronous|HTTP 202")


@pytest.fixture
def served(standin: StandInAPI) -> Iterator[tuple[StandInAPI, httpx2.Client]]:
    with standin.serve() as server, httpx2.Client(base_url=server.url, headers=KEY) as http:
        yield standin, http


def credits_of(api: StandInAPI, organization: str = "org-standin-personal") -> float:
    with StabilityUser(SAMPLE_API_KEY, transport=api.transport) as client:
        return client.get_balance(organization).credits


def form_for(path: str, **fields: str) -> dict[str, str]:
    """Every field the endpoint requires, filled in, and ``fields``."""
    generation = GENERATIONS[path]
    base = dict.fromkeys(generation.required, "a lighthouse at dusk")
    if generation.one_of:
        base[generation.one_of[0]] = "200"
    return {**base, **fields}


def post(http: httpx2.Client, path: str, form: dict[str, str], **headers: str) -> httpx2.Response:
    # Files go as file parts, the rest as text fields: multipart/form-data, as Stability's own
    # samples send it (a dummy file part when there is no file).
    files = {
        name: (f"{name}.png", b"\x89PNG") for name in form if "image" in name or name == "audio"
    }
    data = {name: value for name, value in form.items() if name not in files}
    return http.post(path, data=data, files=files or {"none": ""}, headers=headers)


# -- the table of endpoints, held to the document ----------------------------------------------


def operations() -> dict[str, dict[str, Any]]:
    return {path: item["post"] for path, item in DOCUMENT["paths"].items() if "post" in item}


def required_in(description: str) -> set[str]:
    """The fields a description's "should include" / "must include" list names (up to the
    blank line that ends it), or its "only required parameter"."""
    only = re.search(r"the only required\s+parameter is the `(\w+)`", description)
    if only is not None:
        return {only.group(1)}
    found = re.search(r"(?:should|must) include:\n(.*?)(?:\n\n|\Z)", description, re.DOTALL)
    assert found is not None
    return set(re.findall(r"^- `(\w+)`", found.group(1), re.MULTILINE))


def test_every_synchronous_priced_operation_is_served_and_no_other() -> None:
    synchronous = {
        path
        for path, operation in operations().items()
        if "### Credits" in operation["description"]
        and not ASYNCHRONOUS.search(operation["description"])
    }
    assert set(GENERATIONS) == synchronous
    assert len(GENERATIONS) == 20


@pytest.mark.parametrize("path", sorted(GENERATIONS))
def test_each_endpoint_requires_what_its_document_requires(path: str) -> None:
    operation = operations()[path]
    generation = GENERATIONS[path]
    assert set(generation.required) == required_in(operation["description"])
    properties = operation.get("requestBody", {}).get("content", {})
    schema = properties.get("multipart/form-data", {}).get("schema", {}).get("properties", {})
    if "output_format" in schema:
        enum = schema["output_format"]["enum"]
        assert set(generation.formats) == set(enum)
        assert generation.formats[0] == schema["output_format"]["default"]
    else:
        assert generation.output == "3d"


def test_outpaint_takes_at_least_one_direction() -> None:
    description = operations()["/v2beta/stable-image/edit/outpaint"]["description"]
    assert "Along with _at least one_ outpaint direction" in description
    outpaint = GENERATIONS["/v2beta/stable-image/edit/outpaint"]
    assert outpaint.one_of == ("left", "right", "up", "down")


# -- answers, and what each one costs --------------------------------------------------------


@pytest.mark.parametrize("path", sorted(GENERATIONS))
def test_each_endpoint_answers_a_real_file_and_charges_its_price(
    served: tuple[StandInAPI, httpx2.Client], path: str
) -> None:
    api, http = served
    before = credits_of(api)
    answer = post(http, path, form_for(path))
    assert answer.status_code == 200, answer.text
    assert answer.headers["finish-reason"] == "SUCCESS"
    assert int(answer.headers["seed"]) > 0
    kind = answer.headers["content-type"]
    if kind.startswith("image/"):
        with Image.open(io.BytesIO(answer.content)) as image:
            assert image.size == (1, 1)
            assert Image.MIME[image.format or ""] == kind
    elif kind == "audio/mpeg":
        header = struct.unpack(">I", answer.content[:4])[0]
        assert header >> 21 == 0x7FF  # frame sync
        assert len(answer.content) == 144 * 128_000 // 44_100
    elif kind == "audio/wav":
        with wave.open(io.BytesIO(answer.content)) as sound:
            assert (sound.getframerate(), sound.getnchannels()) == (44100, 2)
    else:
        assert kind == "model/gltf-binary"
        magic, version, length = struct.unpack("<4sII", answer.content[:12])
        assert (magic, version, length) == (b"glTF", 2, len(answer.content))
        size, chunk = struct.unpack("<I4s", answer.content[12:20])
        assert chunk == b"JSON"
        assert json.loads(answer.content[20 : 20 + size]) == {"asset": {"version": "2.0"}}
    assert credits_of(api) == before - price(path).credits


def test_json_carries_the_file_in_base64_the_reason_and_the_seed(
    served: tuple[StandInAPI, httpx2.Client],
) -> None:
    api, http = served
    answer = post(
        http, CORE, form_for(CORE, seed="42", output_format="webp"), accept="application/json"
    )
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"image", "finish_reason", "seed"}
    assert (body["finish_reason"], body["seed"]) == ("SUCCESS", 42)
    assert answer.headers["seed"] == "42"
    with Image.open(io.BytesIO(base64.b64decode(body["image"]))) as image:
        assert image.format == "WEBP"
    sound = post(http, AUDIO, form_for(AUDIO, output_format="wav"), accept="application/json")
    assert set(sound.json()) == {"audio", "finish_reason", "seed"}
    assert credits_of(api) == 125.5 - 3 - 20


@pytest.mark.parametrize(
    ("form", "charged"),
    [
        ({}, 6.5),  # the document's default model: sd3.5-large
        ({"model": "sd3.5-medium"}, 3.5),
        ({"model": "sd3.5-flash"}, 2.5),  # priced by the document, missing from its enum
    ],
)
def test_sd3_charges_the_model_asked_for(
    served: tuple[StandInAPI, httpx2.Client], form: dict[str, str], charged: float
) -> None:
    api, http = served
    assert post(http, SD3, form_for(SD3, **form)).status_code == 200
    assert credits_of(api) == 125.5 - charged


@pytest.mark.parametrize(
    ("form", "charged"),
    [
        ({}, 20.0),
        ({"steps": "100"}, 23.0),  # 17 + 0.06 * steps
        ({"steps": "30"}, 18.8),
        ({"model": "stable-audio-2.5", "steps": "8"}, 20.0),
    ],
)
def test_stable_audio_2_charges_by_its_formula(
    served: tuple[StandInAPI, httpx2.Client], form: dict[str, str], charged: float
) -> None:
    api, http = served
    assert post(http, AUDIO, form_for(AUDIO, **form)).status_code == 200
    assert credits_of(api) == round(125.5 - charged, 10)


@pytest.mark.parametrize(
    ("path", "form", "status", "message"),
    [
        (CORE, {"output_format": "png"}, 400, "prompt: is required"),
        (CORE, {"prompt": "  "}, 400, "prompt: is required"),
        (
            "/v2beta/stable-image/edit/search-and-replace",
            {"image": "x", "prompt": "a cat"},
            400,
            "search_prompt: is required",
        ),
        (
            "/v2beta/stable-image/edit/outpaint",
            {"image": "x"},
            400,
            "left, right, up, down: at least one is required",
        ),
        (
            SD3,
            {"prompt": "a cat", "model": "sd3.5-huge"},
            400,
            "model: must be one of sd3.5-large, sd3.5-large-turbo, sd3.5-medium, sd3.5-flash",
        ),
        (
            AUDIO,
            {"prompt": "rain", "steps": "many"},
            400,
            "steps: must be a positive whole number, not 'many'",
        ),
        (
            AUDIO,
            {"prompt": "rain", "steps": "0"},
            400,
            "steps: must be a positive whole number, not '0'",
        ),
        (
            "/v2beta/stable-image/edit/remove-background",
            {"image": "x", "output_format": "jpeg"},
            400,
            "output_format: must be one of png, webp",
        ),
    ],
)
def test_a_request_the_document_refuses_is_a_400_and_costs_nothing(
    served: tuple[StandInAPI, httpx2.Client],
    path: str,
    form: dict[str, str],
    status: int,
    message: str,
) -> None:
    api, http = served
    answer = post(http, path, form)
    assert answer.status_code == status
    body = answer.json()
    assert (body["name"], body["errors"]) == ("bad_request", [message])
    assert credits_of(api) == 125.5


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"--other\r\n\r\nprompt\r\n--other--\r\n", "body: not a valid multipart/form-data body"),
        (
            b"--b\r\nContent-Disposition: form-data\r\n\r\na cat\r\n--b--\r\n",
            "body: a part without a form field name",
        ),
        (
            b'--b\r\nContent-Disposition: form-data; name="prompt"\r\n\r\n\xff\xfe\r\n--b--\r\n',
            "prompt: not UTF-8 text",
        ),
    ],
)
def test_a_body_that_is_not_a_form_is_a_400_and_costs_nothing(
    served: tuple[StandInAPI, httpx2.Client], body: bytes, message: str
) -> None:
    api, http = served
    answer = http.post(
        CORE, content=body, headers={"Content-Type": "multipart/form-data; boundary=b"}
    )
    assert (answer.status_code, answer.json()["errors"]) == (400, [message])
    assert credits_of(api) == 125.5


def test_refusals_before_the_form_cost_nothing(served: tuple[StandInAPI, httpx2.Client]) -> None:
    api, http = served
    cases: list[tuple[httpx2.Response, int, str]] = [
        (http.post(CORE, json={"prompt": "a cat"}), 400, "bad_request"),  # not multipart
        (http.get(CORE), 405, "method_not_allowed"),
        (post(http, CORE, form_for(CORE), accept="text/html"), 406, "not_acceptable"),
        (post(http, CORE, form_for(CORE), authorization=""), 401, "unauthorized"),
        (post(http, CORE, form_for(CORE), authorization="Bearer sk-wrong"), 401, "unauthorized"),
        (post(http, CORE, form_for(CORE), organization="org-elsewhere"), 403, "permission_denied"),
        (post(http, "/v2beta/stable-image/upscale/creative", form_for(CORE)), 404, "not_found"),
    ]
    for answer, status, name in cases:
        assert (answer.status_code, answer.json()["name"]) == (status, name), answer.text
    assert cases[1][0].headers["allow"] == "POST"
    assert credits_of(api) == 125.5


def test_a_balance_below_the_price_is_a_402_and_costs_nothing(
    served: tuple[StandInAPI, httpx2.Client],
) -> None:
    api, http = served
    lab = {"organization": "org-standin-lab"}  # 3.25 credits
    refused = post(http, "/v2beta/stable-image/generate/ultra", form_for(CORE), **lab)
    assert refused.status_code == 402
    assert refused.json()["name"] == "payment_required"
    assert credits_of(api, "org-standin-lab") == 3.25
    assert post(http, CORE, form_for(CORE), **lab).status_code == 200  # 3 credits: it fits
    assert credits_of(api, "org-standin-lab") == 0.25


def test_an_injected_failure_costs_nothing_and_a_filtered_result_is_charged(
    served: tuple[StandInAPI, httpx2.Client],
) -> None:
    api, http = served
    api.inject_error(500, endpoint="generation")
    failed = post(http, CORE, form_for(CORE))
    assert failed.status_code == 500
    assert failed.json()["errors"] == ["Injected error: HTTP 500."]
    api.inject_error(503, endpoint=SD3, times=None)
    assert post(http, SD3, form_for(SD3)).status_code == 503
    assert credits_of(api) == 125.5
    api.clear_errors()
    api.inject_content_filter(endpoint=CORE)
    filtered = post(http, CORE, form_for(CORE), accept="application/json")
    assert (filtered.status_code, filtered.json()["finish_reason"]) == (200, "CONTENT_FILTERED")
    assert filtered.headers["finish-reason"] == "CONTENT_FILTERED"
    assert post(http, CORE, form_for(CORE)).headers["finish-reason"] == "SUCCESS"  # once only
    assert credits_of(api) == 125.5 - 6
    api.inject_content_filter(endpoint=SD3, times=None)  # every sd3 result, no other
    api.inject_content_filter(endpoint=AUDIO, times=2)
    reasons = [
        post(http, path, form_for(path)).headers["finish-reason"]
        for path in (CORE, SD3, SD3, AUDIO, AUDIO, AUDIO)
    ]
    assert reasons == ["SUCCESS", *["CONTENT_FILTERED"] * 4, "SUCCESS"]
    with pytest.raises(ValueError, match="endpoint must be"):
        api.inject_error(500, endpoint="/v2beta/nowhere")
    with pytest.raises(ValueError, match="endpoint must be"):
        api.inject_content_filter(endpoint="/v2beta/stable-image/upscale/creative")


def test_a_balance_request_without_a_body_still_passes_through_a_wrapper(
    standin: StandInAPI,
) -> None:
    # Wrappers of the stand-in written before generations (respond(method, path, headers))
    # keep working for the account and balance.
    class Wrapper:
        def __init__(self, api: StandInAPI) -> None:
            self.api = api

        def respond(self, method: str, path: str, headers: Any) -> Any:
            return self.api.respond(method, path, headers)

    with StandInServer(Wrapper(standin), port=0) as server:  # type: ignore[arg-type]
        answer = httpx2.get(f"{server.url}/v1/user/balance", headers=KEY)
    assert answer.json() == {"credits": 125.5}


def test_in_process_transports_answer_and_charge_alike(standin: StandInAPI) -> None:
    form = {"prompt": "a cat"}
    with httpx2.Client(transport=standin.transport, base_url="http://standin", headers=KEY) as http:
        assert http.post(CORE, data=form, files={"none": ""}).status_code == 200

    async def main() -> int:
        async with httpx2.AsyncClient(
            transport=standin.transport, base_url="http://standin", headers=KEY
        ) as http:
            answer = await http.post(CORE, data=form, files={"none": ""})
            return answer.status_code

    assert asyncio.run(main()) == 200
    assert credits_of(standin) == 125.5 - 6


def test_require_credits_of_an_estimate_guards_a_real_batch(standin: StandInAPI) -> None:
    plan = estimate({"core": 10, "sd3.5-medium": 4})  # 30 + 14
    with (
        StabilityUser(SAMPLE_API_KEY, transport=standin.transport) as client,
        httpx2.Client(transport=standin.transport, base_url="http://standin", headers=KEY) as http,
    ):
        client.require_credits(plan)
        for _ in range(10):
            http.post(CORE, data={"prompt": "a cat"}, files={"none": ""}).raise_for_status()
        for _ in range(4):
            http.post(
                SD3, data={"prompt": "a cat", "model": "sd3.5-medium"}, files={"none": ""}
            ).raise_for_status()
        assert client.get_balance().credits == 125.5 - plan.total

    async def check() -> float:
        async with AsyncStabilityUser(SAMPLE_API_KEY, transport=standin.transport) as client:
            return (await client.require_credits(estimate({"core": 27}))).credits

    assert asyncio.run(check()) == 81.5  # 27 core are 81: just enough
