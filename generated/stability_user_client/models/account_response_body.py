from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.organization_membership import OrganizationMembership


T = TypeVar("T", bound="AccountResponseBody")


@_attrs_define
class AccountResponseBody:
    """
    Attributes:
        id (str): The user's ID Example: user-1234.
        email (str): The user's email Example: example@stability.ai.
        organizations (list[OrganizationMembership]): The user's organizations
        profile_picture (str | Unset): The user's profile picture Example: https://api.stability.ai/example.png.
    """

    id: str
    email: str
    organizations: list[OrganizationMembership]
    profile_picture: str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        id = self.id

        email = self.email

        organizations = []
        for organizations_item_data in self.organizations:
            organizations_item = organizations_item_data.to_dict()
            organizations.append(organizations_item)

        profile_picture = self.profile_picture

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "id": id,
                "email": email,
                "organizations": organizations,
            }
        )
        if profile_picture is not UNSET:
            field_dict["profile_picture"] = profile_picture

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.organization_membership import OrganizationMembership

        d = dict(src_dict)
        id = d.pop("id")

        email = d.pop("email")

        organizations = []
        _organizations = d.pop("organizations")
        for organizations_item_data in _organizations:
            organizations_item = OrganizationMembership.from_dict(organizations_item_data)

            organizations.append(organizations_item)

        profile_picture = d.pop("profile_picture", UNSET)

        account_response_body = cls(
            id=id,
            email=email,
            organizations=organizations,
            profile_picture=profile_picture,
        )

        account_response_body.additional_properties = d
        return account_response_body

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
