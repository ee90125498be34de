"""The status line's cache on disk: ``stability-user status`` and ``cached_balance()`` answer
from it without a request while it is fresh. ``_store`` holds its entries, folder and locks
(standard library only: a prompt loads it), ``_policy`` when an entry is fresh, stale or due
for a refresh, and ``_canonical`` the one spelling of a key, base URL and API version that the
cache and the client's settings share.
"""

__all__: list[str] = []
