"""openapi.yaml agrees with Stability's published documents on everything on the wire.

The documents are vendored in ``spec/upstream/``, so every clone runs every check: the
``v1/user`` operations against the v1 document, the ``v1alpha/user`` ones against the
v1alpha document.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_spec_validator import validate

from stability_user import Account, Balance, Organization

# Quick tests: a tight ceiling, so a loop that never ends fails fast.
pytestmark = pytest.mark.timeout(10)

ROOT = Path(__file__).resolve().parent.parent
# The vendored documents; SPEC_UPSTREAM points the checks at another copy of them (what
# scripts/spec_watch.py --write would leave, in its tests).
UPSTREAM = Path(os.environ.get("SPEC_UPSTREAM") or ROOT / "spec" / "upstream")
SPEC: dict[str, Any] = yaml.safe_load((ROOT / "openapi.yaml").read_text())

# Our tag -> the published document that defines it.
DOCUMENTS = {
    "v1/user": "stability-rest-v1.openapi.json",
    "v1alpha/user": "stability-rest-v1alpha.openapi.json",
}
OPERATIONS = [
    ("v1/user", "/v1/user/account"),
    ("v1/user", "/v1/user/balance"),
    ("v1alpha/user", "/v1alpha/user/account"),
    ("v1alpha/user", "/v1alpha/user/balance"),
]
# Responses neither document lists for these paths: the project's additions.
ADDED_STATUSES = {"403", "404", "429"}


def upstream(tag: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((UPSTREAM / DOCUMENTS[tag]).read_text())
    return loaded


def resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def wire_shape(document: dict[str, Any], schema: dict[str, Any]) -> Any:
    """What goes over the wire: types, formats, required fields; no descriptions or examples."""
    schema = resolve(document, schema)
    shape: dict[str, Any] = {"type": schema.get("type"), "format": schema.get("format")}
    if "properties" in schema:
        shape["required"] = sorted(schema.get("required", []))
        shape["properties"] = {
            name: wire_shape(document, prop) for name, prop in schema["properties"].items()
        }
    if "items" in schema:
        shape["items"] = wire_shape(document, schema["items"])
    return shape


def operation(document: dict[str, Any], path: str) -> dict[str, Any]:
    found: dict[str, Any] = document["paths"][path]["get"]
    return found


# Where each vendored document was published, when it was copied, and the copy's digest
# (scripts/spec_watch.py keeps it): an edit by hand shows here.
SOURCES: dict[str, Any] = json.loads((UPSTREAM / "sources.json").read_text())
# Vendored for what it states, not for a tag this SDK wraps: the v2beta document, whose
# operations' "### Credits" sections are stability_user.prices' catalogue (make generate).
PRICED = "stability-v2beta.openapi.json"
VENDORED = sorted([*DOCUMENTS.values(), PRICED])


@pytest.mark.parametrize("name", VENDORED)
def test_the_published_documents_are_vendored_unchanged(name: str) -> None:
    digest = hashlib.sha256((UPSTREAM / name).read_bytes()).hexdigest()
    assert digest == SOURCES[name]["sha256"]
    assert sorted(SOURCES) == VENDORED


def test_the_v1_document_announces_the_v1alpha_retirement() -> None:
    description = " ".join(upstream("v1/user")["info"]["description"].split())
    assert "will disabled on May 1st, 2023" in description


def test_the_spec_is_valid_openapi_with_contact_and_license() -> None:
    validate(SPEC)
    assert SPEC["info"]["contact"]["url"]
    assert SPEC["info"]["license"]["name"] == "MIT"


@pytest.mark.parametrize("tag", sorted(DOCUMENTS))
def test_paths_and_methods_match_the_published_tag(tag: str) -> None:
    theirs = {
        path: sorted(ops)
        for path, ops in upstream(tag)["paths"].items()
        if any(tag in op.get("tags", []) for op in ops.values())
    }
    ours = {
        path: sorted(ops)
        for path, ops in SPEC["paths"].items()
        if any(tag in op.get("tags", []) for op in ops.values())
    }
    assert ours == theirs
    assert sorted(ours) == sorted(path for t, path in OPERATIONS if t == tag)


def test_the_spec_holds_exactly_the_two_generations() -> None:
    assert sorted(SPEC["paths"]) == sorted(path for _, path in OPERATIONS)


@pytest.mark.parametrize("tag", sorted(DOCUMENTS))
@pytest.mark.parametrize(
    "name", ["AccountResponseBody", "OrganizationMembership", "BalanceResponseBody"]
)
def test_response_schemas_match(tag: str, name: str) -> None:
    theirs_document = upstream(tag)
    ours = wire_shape(SPEC, SPEC["components"]["schemas"][name])
    theirs = wire_shape(theirs_document, theirs_document["components"]["schemas"][name])
    assert ours == theirs


@pytest.mark.parametrize(("tag", "path"), OPERATIONS)
def test_success_responses_and_security_match(tag: str, path: str) -> None:
    document = upstream(tag)
    ours, theirs = operation(SPEC, path), operation(document, path)
    json_type = "application/json"

    def success(doc: dict[str, Any], op: dict[str, Any]) -> Any:
        response = resolve(doc, op["responses"]["200"])
        return wire_shape(doc, response["content"][json_type]["schema"])

    assert success(SPEC, ours) == success(document, theirs)
    ours_schemes = [SPEC["components"]["securitySchemes"][n] for s in ours["security"] for n in s]
    their_schemes = [
        document["components"]["securitySchemes"][n] for s in theirs["security"] for n in s
    ]
    wire = [{k: s[k] for k in ("type", "in", "name")} for s in ours_schemes]
    assert wire == [{k: s[k] for k in ("type", "in", "name")} for s in their_schemes]
    assert wire == [{"type": "apiKey", "in": "header", "name": "Authorization"}]


def parameters(document: dict[str, Any], path: str) -> list[tuple[str, str, bool, str]]:
    found = operation(document, path).get("parameters", [])
    return [
        (p["name"], p["in"], p.get("required", False), p["schema"]["type"])
        for p in (resolve(document, p) for p in found)
    ]


@pytest.mark.parametrize(("tag", "path"), OPERATIONS)
def test_parameters_match(tag: str, path: str) -> None:
    assert parameters(SPEC, path) == parameters(upstream(tag), path)


def test_balance_takes_its_optional_headers() -> None:
    assert parameters(SPEC, "/v1/user/balance") == [
        ("Organization", "header", False, "string"),
        ("Stability-Client-ID", "header", False, "string"),
        ("Stability-Client-Version", "header", False, "string"),
    ]
    assert parameters(SPEC, "/v1alpha/user/balance") == [
        ("Organization", "header", False, "string")
    ]
    assert parameters(SPEC, "/v1/user/account") == parameters(SPEC, "/v1alpha/user/account") == []


@pytest.mark.parametrize("path", [path for tag, path in OPERATIONS if tag == "v1/user"])
def test_v1_documented_errors_match(path: str) -> None:
    v1 = upstream("v1/user")
    theirs = operation(v1, path)["responses"]
    ours = operation(SPEC, path)["responses"]
    documented = set(theirs) - {"200"}
    assert documented == {"401", "500"}
    for status in documented:
        mine = resolve(SPEC, ours[status])["content"]["application/json"]["schema"]
        published = resolve(v1, theirs[status])["content"]["application/json"]["schema"]
        assert wire_shape(SPEC, mine)["properties"] == wire_shape(v1, published)["properties"]


@pytest.mark.parametrize(("tag", "path"), OPERATIONS)
def test_every_operation_lists_the_same_responses(tag: str, path: str) -> None:
    theirs = set(operation(upstream(tag), path)["responses"])
    ours = set(operation(SPEC, path)["responses"])
    assert theirs <= ours
    # What neither document lists is this project's addition, and the document says so.
    assert ours - theirs - {"401", "500"} == ADDED_STATUSES
    for status in ADDED_STATUSES:
        described = resolve(SPEC, operation(SPEC, path)["responses"][status])["description"]
        assert "this project's addition" in described
    assert "this project's additions" in " ".join(SPEC["info"]["description"].split())


@pytest.mark.parametrize("status", ["401", "403", "404", "500"])
@pytest.mark.parametrize("path", [path for _, path in OPERATIONS])
def test_error_responses_carry_the_v1_error_body(path: str, status: str) -> None:
    v1 = upstream("v1/user")
    response = resolve(SPEC, operation(SPEC, path)["responses"][status])
    schema = wire_shape(SPEC, response["content"]["application/json"]["schema"])
    theirs = wire_shape(v1, v1["components"]["schemas"]["Error"])
    assert schema["properties"] == theirs["properties"]
    # v1 also lists a "status" it never defines; the body has id, name and message.
    assert schema["required"] == ["id", "message", "name"]


@pytest.mark.parametrize("path", [path for _, path in OPERATIONS])
def test_the_429_carries_the_list_of_errors(path: str) -> None:
    response = resolve(SPEC, operation(SPEC, path)["responses"]["429"])
    schema = wire_shape(SPEC, response["content"]["application/json"]["schema"])
    assert schema["required"] == ["errors", "id", "name"]
    assert schema["properties"]["errors"]["items"]["type"] == "string"


@pytest.mark.parametrize(
    ("model", "schema"),
    [
        (Account, "AccountResponseBody"),
        (Organization, "OrganizationMembership"),
        (Balance, "BalanceResponseBody"),
    ],
)
def test_facade_models_have_exactly_the_spec_fields(model: type, schema: str) -> None:
    properties = SPEC["components"]["schemas"][schema]["properties"]
    assert {field.name for field in dataclasses.fields(model)} == set(properties)
