"""Contains all the data models used in inputs/outputs"""

from .account_response_body import AccountResponseBody
from .balance_response_body import BalanceResponseBody
from .error import Error
from .error_list import ErrorList
from .organization_membership import OrganizationMembership

__all__ = (
    "AccountResponseBody",
    "BalanceResponseBody",
    "Error",
    "ErrorList",
    "OrganizationMembership",
)
