"""The check of Stability's prices: in the document the price catalogue is read from (the v2beta
one), each price that moved, was added or went, in plain words (``generate/ultra: 8 to 9 credits
per successful result``).

The prices are read as ``make generate`` reads them, by ``scripts/price_catalogue.py``: a moved
price is what a regenerated catalogue would hold. A Credits section that script cannot read
stops the watch with the operation named, as it would stop ``make generate``: the script must
learn the new wording before the copy can move.
"""

from __future__ import annotations

import json
from typing import Any

import price_catalogue

from spec_checks.base import CheckError, Documents, Finding, Impact

__all__ = ["price_changes"]


def price_changes(documents: Documents) -> list[Finding]:
    """Each price that moved, one finding each; none for a document prices are not read from."""
    if documents.name != price_catalogue.DOCUMENT_NAME:
        return []
    old = _catalogue(documents.old, "the copy")
    new = _catalogue(documents.new, "the published document")
    lines = price_catalogue.price_changes(old, new)
    return [Finding(Impact.PRICE, line, in_tag=False) for line in lines]


def _catalogue(document: dict[str, Any], which: str) -> dict[str, Any]:
    try:
        catalogue: dict[str, Any] = price_catalogue.read_catalogue(json.dumps(document).encode())
    except price_catalogue.CatalogueError as error:
        raise CheckError(
            f"{which}'s prices cannot be read: {error} (make generate stops on it too: "
            "scripts/price_catalogue.py must learn the wording first)"
        ) from error
    return catalogue
