"""What a run will cost before it starts: Stability's prices, read from its own API document.

Stability publishes no price API; the one machine-readable place it states prices is the
"### Credits" section of each operation of its v2beta OpenAPI document. ``make generate`` reads
them into the catalogue this module ships, with the SHA-256 of the document they came from;
hand-kept price tables drift, this one follows the document::

    from stability_user import require_credits
    from stability_user.prices import calls_for, estimate, price

    price("ultra").credits                      # 8.0, per successful result
    price("stable-audio-2", steps=100).credits  # 23.0: 17 + 0.06 * steps
    plan = estimate({"ultra": 100, "core": 20})  # plan.total == 860.0
    require_credits(plan)                       # InsufficientCreditsError names the plan
    calls_for(125.5, "core")                    # 41 whole calls

Services go by short names (``ultra``, ``core``, ``sd3.5-large``, ``upscale-fast``,
``erase``, ``stable-audio-2``...: ``catalogue().names``) or by their endpoint's path. Prices are
per successful result: Stability does not charge for failed calls. ``STABILITY_PRICES=FILE`` (a
TOML ``[prices]`` table of ``name = credits``) puts your own rates over the catalogue's, and
every value that used one says so (``Price.overridden``, ``Estimate.overridden``).
"""

from __future__ import annotations

from ._catalogue import MAX_PARAMETER, catalogue, lookup
from ._plan import MAX_COUNT, Plan, calls_for, estimate
from ._records import Catalogue, Document, Estimate, EstimateLine, Formula, Price, Unpriced

__all__ = [
    "Catalogue",
    "Document",
    "Estimate",
    "EstimateLine",
    "Formula",
    "MAX_COUNT",
    "MAX_PARAMETER",
    "Plan",
    "Price",
    "Unpriced",
    "calls_for",
    "catalogue",
    "estimate",
    "price",
]


def price(name: str, /, **parameters: str | int) -> Price:
    """The price of one call of ``name``, per successful result.

    Args:
        name: A service's short name (``"ultra"``, ``"sd3.5-medium"``), or its endpoint's path
            (``"/v2beta/stable-image/generate/sd3"``, then the default model unless ``model=``).
        parameters: ``model=`` with a path; the formula's parameter where the credits depend
            on one (``steps=100`` for ``stable-audio-2``), else its default.

    Raises:
        ConfigurationError: An unknown name (the closest ones named), a parameter the service
            does not take or a value out of range, or an unusable ``STABILITY_PRICES``.
        StabilityError: The catalogue's data file is missing or unreadable.
    """
    return lookup(name, parameters)
