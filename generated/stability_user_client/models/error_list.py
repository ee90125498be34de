from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="ErrorList")


@_attrs_define
class ErrorList:
    """The other error body the API answers with, observed on its 429: a list of messages instead of one. Not in the
    published documents.

        Attributes:
            id (str): An identifier of the problem (for a 429, its name again). Example: rate_limit_exceeded.
            name (str): The short-name of this class of errors. Example: rate_limit_exceeded.
            errors (list[str]): Human-readable explanations.
    """

    id: str
    name: str
    errors: list[str]
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        id = self.id

        name = self.name

        errors = self.errors

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "id": id,
                "name": name,
                "errors": errors,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        id = d.pop("id")

        name = d.pop("name")

        errors = cast(list[str], d.pop("errors"))

        error_list = cls(
            id=id,
            name=name,
            errors=errors,
        )

        error_list.additional_properties = d
        return error_list

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
