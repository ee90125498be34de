"""openapi.yaml agrees with Stability's published documents on everything on the wire."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_spec_validator import validate

from stability_user import Account, Balance, Organization

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT.parent / "shared" / "reference"
SPEC: dict[str, Any] = yaml.safe_load((ROOT / "openapi.yaml").read_text())

pytestmark = pytest.mark.skipif(
    not (REFERENCE / "stability-rest-v1alpha.openapi.json").exists(),
    reason="the reference documents sit in ../shared/reference beside the checkout",
)


def upstream(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((REFERENCE / name).read_text())
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


def test_the_spec_is_valid_openapi() -> None:
    validate(SPEC)


def test_paths_and_methods_match_the_v1alpha_user_tag() -> None:
    v1alpha = upstream("stability-rest-v1alpha.openapi.json")
    theirs = {
        path: sorted(ops)
        for path, ops in v1alpha["paths"].items()
        if any("v1alpha/user" in op.get("tags", []) for op in ops.values())
    }
    ours = {path: sorted(ops) for path, ops in SPEC["paths"].items()}
    assert ours == theirs == {"/v1alpha/user/account": ["get"], "/v1alpha/user/balance": ["get"]}


@pytest.mark.parametrize(
    "name", ["AccountResponseBody", "OrganizationMembership", "BalanceResponseBody"]
)
def test_response_schemas_match(name: str) -> None:
    v1alpha = upstream("stability-rest-v1alpha.openapi.json")
    ours = wire_shape(SPEC, SPEC["components"]["schemas"][name])
    theirs = wire_shape(v1alpha, v1alpha["components"]["schemas"][name])
    assert ours == theirs


@pytest.mark.parametrize("path", ["/v1alpha/user/account", "/v1alpha/user/balance"])
def test_success_responses_and_security_match(path: str) -> None:
    v1alpha = upstream("stability-rest-v1alpha.openapi.json")
    ours, theirs = SPEC["paths"][path]["get"], v1alpha["paths"][path]["get"]
    schema = "application/json"
    assert wire_shape(SPEC, ours["responses"]["200"]["content"][schema]["schema"]) == wire_shape(
        v1alpha, theirs["responses"]["200"]["content"][schema]["schema"]
    )
    ours_schemes = [SPEC["components"]["securitySchemes"][n] for s in ours["security"] for n in s]
    their_schemes = [
        v1alpha["components"]["securitySchemes"][n] for s in theirs["security"] for n in s
    ]
    wire = [{k: s[k] for k in ("type", "in", "name")} for s in ours_schemes]
    assert wire == [{k: s[k] for k in ("type", "in", "name")} for s in their_schemes]
    assert wire == [{"type": "apiKey", "in": "header", "name": "Authorization"}]


def test_the_organization_is_an_optional_header_on_balance_only() -> None:
    v1alpha = upstream("stability-rest-v1alpha.openapi.json")

    def params(document: dict[str, Any], path: str) -> list[tuple[str, str, bool, str]]:
        found = document["paths"][path]["get"].get("parameters", [])
        return [
            (p["name"], p["in"], p.get("required", False), p["schema"]["type"])
            for p in (resolve(document, p) for p in found)
        ]

    for path in ("/v1alpha/user/account", "/v1alpha/user/balance"):
        assert params(SPEC, path) == params(v1alpha, path)
    assert params(SPEC, "/v1alpha/user/balance") == [("Organization", "header", False, "string")]


@pytest.mark.parametrize("status", ["401", "403", "404", "429", "500"])
@pytest.mark.parametrize("path", ["/v1alpha/user/account", "/v1alpha/user/balance"])
def test_error_responses_carry_the_v1_error_body(path: str, status: str) -> None:
    v1 = upstream("stability-rest-v1.openapi.json")
    response = resolve(SPEC, SPEC["paths"][path]["get"]["responses"][status])
    schema = wire_shape(SPEC, response["content"]["application/json"]["schema"])
    theirs = wire_shape(v1, v1["components"]["schemas"]["Error"])
    assert schema["properties"] == theirs["properties"]
    # v1 also lists a "status" it never defines; the body has id, name and message.
    assert schema["required"] == ["id", "message", "name"]


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
