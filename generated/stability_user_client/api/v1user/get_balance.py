from http import HTTPStatus
from typing import Any

import httpx2 as httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.balance_response_body import BalanceResponseBody
from ...models.error import Error
from ...models.error_list import ErrorList
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    organization: str | Unset = UNSET,
    stability_client_id: str | Unset = UNSET,
    stability_client_version: str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(organization, Unset):
        headers["Organization"] = organization

    if not isinstance(stability_client_id, Unset):
        headers["Stability-Client-ID"] = stability_client_id

    if not isinstance(stability_client_version, Unset):
        headers["Stability-Client-Version"] = stability_client_version

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/user/balance",
    }

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> BalanceResponseBody | Error | ErrorList | None:
    if response.status_code == 200:
        response_200 = BalanceResponseBody.from_dict(response.json())

        return response_200

    if response.status_code == 401:
        response_401 = Error.from_dict(response.json())

        return response_401

    if response.status_code == 403:
        response_403 = Error.from_dict(response.json())

        return response_403

    if response.status_code == 404:
        response_404 = Error.from_dict(response.json())

        return response_404

    if response.status_code == 429:
        response_429 = ErrorList.from_dict(response.json())

        return response_429

    if response.status_code == 500:
        response_500 = Error.from_dict(response.json())

        return response_500

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[BalanceResponseBody | Error | ErrorList]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    organization: str | Unset = UNSET,
    stability_client_id: str | Unset = UNSET,
    stability_client_version: str | Unset = UNSET,
) -> Response[BalanceResponseBody | Error | ErrorList]:
    """balance

     Get the credit balance of the account/organization associated with the API key

    Args:
        organization (str | Unset):
        stability_client_id (str | Unset):
        stability_client_version (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[BalanceResponseBody | Error | ErrorList]
    """

    kwargs = _get_kwargs(
        organization=organization,
        stability_client_id=stability_client_id,
        stability_client_version=stability_client_version,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    organization: str | Unset = UNSET,
    stability_client_id: str | Unset = UNSET,
    stability_client_version: str | Unset = UNSET,
) -> BalanceResponseBody | Error | ErrorList | None:
    """balance

     Get the credit balance of the account/organization associated with the API key

    Args:
        organization (str | Unset):
        stability_client_id (str | Unset):
        stability_client_version (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        BalanceResponseBody | Error | ErrorList
    """

    return sync_detailed(
        client=client,
        organization=organization,
        stability_client_id=stability_client_id,
        stability_client_version=stability_client_version,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    organization: str | Unset = UNSET,
    stability_client_id: str | Unset = UNSET,
    stability_client_version: str | Unset = UNSET,
) -> Response[BalanceResponseBody | Error | ErrorList]:
    """balance

     Get the credit balance of the account/organization associated with the API key

    Args:
        organization (str | Unset):
        stability_client_id (str | Unset):
        stability_client_version (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[BalanceResponseBody | Error | ErrorList]
    """

    kwargs = _get_kwargs(
        organization=organization,
        stability_client_id=stability_client_id,
        stability_client_version=stability_client_version,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    organization: str | Unset = UNSET,
    stability_client_id: str | Unset = UNSET,
    stability_client_version: str | Unset = UNSET,
) -> BalanceResponseBody | Error | ErrorList | None:
    """balance

     Get the credit balance of the account/organization associated with the API key

    Args:
        organization (str | Unset):
        stability_client_id (str | Unset):
        stability_client_version (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        BalanceResponseBody | Error | ErrorList
    """

    return (
        await asyncio_detailed(
            client=client,
            organization=organization,
            stability_client_id=stability_client_id,
            stability_client_version=stability_client_version,
        )
    ).parsed
