"""Every default and every environment variable name the SDK uses, in one place."""

from __future__ import annotations

__all__ = [
    "AIOHTTP_INSTALL",
    "API_KEY_ENV",
    "API_VERSION_ENV",
    "API_KEY_PLACEHOLDER",
    "BASE_URL_ENV",
    "CACHE_DIR_ENV",
    "BASE_URL_FALLBACK_ENV",
    "CLIENT_ID_ENV",
    "CLIENT_VERSION_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "EXPORTER_ADDRESS",
    "EXPORTER_ANSWER_TIMEOUT",
    "EXPORTER_DESCRIPTOR_RESERVE",
    "EXPORTER_INTERVAL",
    "EXPORTER_MAX_CONNECTIONS",
    "EXPORTER_PORT",
    "EXPORTER_REQUEST_TIMEOUT",
    "HTTP_BACKENDS",
    "HISTORY_ENV",
    "HISTORY_HEARTBEAT",
    "HTTP_BACKEND_ENV",
    "INITIAL_RETRY_DELAY",
    "LOG_ENV",
    "MCP_INSTALL",
    "MCP_PORT",
    "MCP_TOOL_TIMEOUT",
    "MAX_RETRY_AFTER",
    "MAX_RETRY_DELAY",
    "MAX_SECONDS",
    "MIN_REFRESH_INTERVAL",
    "ORGANIZATION_ENV",
    "PRICES_ENV",
    "RETRYABLE_STATUS_CODES",
    "SSL_CERT_DIR_ENV",
    "STATE_DIR_ENV",
    "TOP_UP_URL",
    "SSL_CERT_FILE_ENV",
    "STATUS_BACKOFF",
    "STATUS_BACKOFF_MAX",
    "STATUS_MAX_AGE",
    "STATUS_TIMEOUT",
    "WATCH_MARGIN",
    "WATCH_NOTIFY_TIMEOUT",
]

API_KEY_ENV = "STABILITY_API_KEY"
BASE_URL_ENV = "STABILITY_BASE_URL"
# The name Stability's own code samples read the host from.
BASE_URL_FALLBACK_ENV = "API_HOST"
ORGANIZATION_ENV = "STABILITY_ORGANIZATION"
LOG_ENV = "STABILITY_LOG"
API_VERSION_ENV = "STABILITY_API_VERSION"
# Sent as Stability-Client-ID / Stability-Client-Version, which the v1 document recommends.
CLIENT_ID_ENV = "STABILITY_CLIENT_ID"
CLIENT_VERSION_ENV = "STABILITY_CLIENT_VERSION"
# AsyncStabilityUser's HTTP backend: "httpx2" (the default) or "aiohttp" (an extra).
HTTP_BACKEND_ENV = "STABILITY_HTTP_BACKEND"
HTTP_BACKENDS = ("httpx2", "aiohttp")
AIOHTTP_INSTALL = "pip install 'stability-user[aiohttp]'"
# `stability-user mcp`: the extra it needs, and its streamable HTTP port on 127.0.0.1.
MCP_INSTALL = "pip install 'stability-user[mcp]'"
MCP_PORT = 8765
# The longest one of its tool calls takes (stability_user.mcp.TOOL_TIMEOUT, which a test
# holds equal): under the 60 s MCP clients commonly allow a request.
MCP_TOOL_TIMEOUT = 30.0
# The CA bundle (PEM file) or hashed folder trusted instead of the operating system's store:
# the names OpenSSL, httpx2 and requests read.
SSL_CERT_FILE_ENV = "SSL_CERT_FILE"
# The balance cache's folder (`stability-user status`, cached_balance()); else the platform's.
CACHE_DIR_ENV = "STABILITY_CACHE_DIR"
SSL_CERT_DIR_ENV = "SSL_CERT_DIR"
# The credits' history (stability_user.history): its folder, else the platform's state folder;
# and the switch that turns the command line's recording off ("off", "0", "false", "no").
STATE_DIR_ENV = "STABILITY_STATE_DIR"
HISTORY_ENV = "STABILITY_HISTORY"
# A TOML file of your own prices ([prices] name = credits) over the catalogue's
# (stability_user.prices): negotiated rates, a price that moved before a release.
PRICES_ENV = "STABILITY_PRICES"
# A reading equal to the last one of its organization is stored at most this often (seconds):
# a heartbeat that shows the balance was watched, without a row per prompt.
HISTORY_HEARTBEAT = 900.0

DEFAULT_BASE_URL = "https://api.stability.ai"
# Where a notice of `stability-user watch` sends people to buy credits.
TOP_UP_URL = "https://platform.stability.ai/account/credits"

# Seconds. Both endpoints answer a few hundred bytes, so anything slower than this is a fault.
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_TIMEOUT = 20.0

# The longest timeout or interval anything accepts: a day is plenty, and beyond it the clocks
# and timers below (time.sleep, thread joins, datetime) overflow long before a year.
MAX_SECONDS = 86400.0

DEFAULT_MAX_RETRIES = 2
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
# The longest a retry waits for a Retry-After (Stability's lockout is 60 s): one asking for more
# waits this long, with a warning. (Beyond it the usual backoff used to run instead, so that
# "Retry-After: 999999999" had the API asked again within a second.)
MAX_RETRY_AFTER = 60.0
RETRYABLE_STATUS_CODES = frozenset({408, 409, 429})  # plus every 5xx

# What cassettes and logs hold where the key was.
API_KEY_PLACEHOLDER = "<STABILITY_API_KEY>"

# `stability-user exporter` and CreditsCollector: loopback only unless asked, and a refresh a
# minute (credits change slowly, and every refresh spends API requests).
EXPORTER_ADDRESS = "127.0.0.1"
EXPORTER_PORT = 9464
EXPORTER_INTERVAL = 60.0
# The shortest interval between refreshes anything accepts (the exporter, its --config file,
# CreditsCollector, CreditsMeter). A refresh is at least two requests (the account, then a
# balance per organization): at one a second, one refresher of an account with up to 13
# organizations stays under Stability's 150 requests per 10 s by itself, leaving the rest of
# the window to the app. Far below it, one meter sent thousands of requests a second.
MIN_REFRESH_INTERVAL = 1.0
# The exporters' HTTP server. A request (its head, and a body of up to 64 KiB) must arrive
# within EXPORTER_REQUEST_TIMEOUT seconds of its connection, and an answer be taken within
# EXPORTER_ANSWER_TIMEOUT: a scraper sends its request at once and reads at once. Open
# connections are capped at half the descriptors left after EXPORTER_DESCRIPTOR_RESERVE (for
# the refreshes' connections, the history store and the process itself), at most
# EXPORTER_MAX_CONNECTIONS.
EXPORTER_REQUEST_TIMEOUT = 5.0
EXPORTER_ANSWER_TIMEOUT = 10.0
EXPORTER_DESCRIPTOR_RESERVE = 64
EXPORTER_MAX_CONNECTIONS = 1024

# `stability-user status` and cached_balance(): a balance younger than this many seconds is
# shown without calling the API; the status command's whole run is bounded by STATUS_TIMEOUT.
STATUS_MAX_AGE = 60.0
STATUS_TIMEOUT = 2.0
# After a failed refresh, a prompt starts no new one for STATUS_BACKOFF seconds, doubled with
# each failure in a row up to STATUS_BACKOFF_MAX: a dead network costs one short background
# process per period, not one per prompt.
STATUS_BACKOFF = 30.0
STATUS_BACKOFF_MAX = 600.0
# The longest a main thread that waits (on workers, a command, a queue) goes without running the
# handler of a signal another of its threads took. Linux may hand a process's signal to any of
# its threads; CPython runs the handler in the main thread only when that thread next runs
# Python code, which a wait without a timeout never does (under load, a Ctrl-C during
# get_balances() or a SIGHUP to measure went unhandled until the wait ended by itself).
SIGNAL_WAKE = 0.25

# `stability-user watch`: how far past its threshold a condition must be before its alert is
# resolved, as a share of the threshold (--margin: a balance hovering at it notifies once), and
# the longest one delivery to a service may take, all of it (--notify-timeout).
WATCH_MARGIN = 0.05
WATCH_NOTIFY_TIMEOUT = 20.0
