"""Everything between a request and a typed result or error: one call with retries
(``_flow``, ``_retry``), the client-side rate limit (``_ratelimit``), pools per process and event
loop (``_pool``), the backends (``_backends``: httpx2, or ``_aiohttp`` with its read deadlines,
``_deadlines``), trust (``_tls``), what differs between API versions (``_versions``), and the
answers turned into models (``_parsing``) or typed errors (``_error_mapping``).

Imports nothing above it: the client (``_core``, ``_config``) builds on it, never the reverse.
"""

__all__: list[str] = []
