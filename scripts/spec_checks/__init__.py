"""The checks `make spec-watch` runs on a published document that differs from its copy.

A check is a function of ``Documents`` (the vendored copy, the published document, the tag of
them this SDK wraps and the copy's name) that returns ``Finding``s: one change each, in plain
words, with what it means for a client of the wrapped operations (``Impact``), or for the
prices. ``report.compare`` runs them all; ``report.summary`` writes the pull request's Markdown,
the verdict first.

- ``openapi_diff``: Atlassian's openapi-diff over the whole document (it also refuses a
  document that is not valid OpenAPI), for a document with operations this SDK wraps;
- ``contract``: the wrapped operations as this SDK meets them on the wire: parameters and
  headers, statuses, media types, response bodies property by property;
- ``prices``: in the document the price catalogue is read from, each price that moved.

Another kind of check is one more module here, its function added to ``CHECKS``.
"""

from __future__ import annotations

from spec_checks.base import Check
from spec_checks.contract import client_contract
from spec_checks.openapi_diff import openapi_diff
from spec_checks.prices import price_changes

__all__ = ["CHECKS"]

# openapi-diff first: a document it finds invalid stops the run before anything reads it.
CHECKS: tuple[Check, ...] = (openapi_diff, client_contract, price_changes)
