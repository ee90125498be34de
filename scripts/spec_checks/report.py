"""One document's ``Comparison`` (what moved, by name, and every check's findings), and the
``summary`` a pull request carries: the verdict for the wrapped operations first, and the
prices' own where one moved; then for each document each change to the wrapped operations in
plain words, the gravest first, each price that moved, and what moved in the whole document."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from spec_checks.base import Check, Documents, Finding, Impact, normalized, operations

__all__ = ["PRICES_MOVED", "VERDICTS", "Comparison", "compare", "summary"]

VERDICTS = {
    Impact.BREAKING: (
        "**Breaking for this SDK:** an operation it wraps changed in a way a client can break "
        "on (below). The wire-contract tests fail until `openapi.yaml` and the facade are "
        "brought along."
    ),
    Impact.REVIEW: (
        "**The operations this SDK wraps changed in a way the watch does not classify** "
        "(below): read the change; the wire-contract tests say whether `openapi.yaml` must "
        "follow."
    ),
    Impact.COMPATIBLE: (
        "**The operations this SDK wraps changed compatibly**: regenerate, let `openapi.yaml` "
        "follow, release."
    ),
    Impact.READERS: (
        "**The user API this SDK wraps is unchanged for clients**: only what a reader sees "
        "(descriptions, examples) changed. The copies move; no release is needed."
    ),
    None: "**The user API this SDK wraps is unchanged**: only the copies move.",
}
# A price that moved needs a release whatever the wrapped operations did.
PRICES_MOVED = (
    "**Stability's prices changed** (below): `make generate` moves the price catalogue with "
    "them, and a release carries it to users"
)
# The verdicts that call for no release: with a price moved, they follow the prices' verdict.
UNRELEASED = {
    Impact.READERS: "the user API this SDK wraps is unchanged for clients (only what a reader "
    "sees changed)",
    None: "the user API this SDK wraps is unchanged",
}


@dataclass
class Comparison:
    """How one document changed: operations (``METHOD /path``) and component parameters,
    schemas and responses by name, each added, removed or changed; and every check's findings."""

    operations: dict[str, list[str]] = field(default_factory=dict)
    components: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    def gravest(self) -> Impact | None:
        """The gravest impact on the tag's operations, ``None`` when they did not change."""
        impacts = [f.impact for f in self.findings if f.in_tag and f.impact is not Impact.NOTE]
        return min(impacts, key=lambda impact: impact.rank, default=None)

    def prices(self) -> list[Finding]:
        """The prices that moved."""
        return [finding for finding in self.findings if finding.impact is Impact.PRICE]


def _by_name(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[str]]:
    changes = {
        "added": sorted(set(new) - set(old)),
        "removed": sorted(set(old) - set(new)),
        "changed": sorted(
            name for name in set(old) & set(new) if normalized(old[name]) != normalized(new[name])
        ),
    }
    return {kind: names for kind, names in changes.items() if names}


def compare(documents: Documents, checks: Iterable[Check]) -> Comparison:
    """What changed from ``documents.old`` to ``documents.new``, by name and by each check."""
    old, new = documents.old, documents.new
    comparison = Comparison(operations=_by_name(operations(old), operations(new)))
    for kind in ("parameters", "schemas", "responses"):
        found = _by_name(
            old.get("components", {}).get(kind, {}), new.get("components", {}).get(kind, {})
        )
        if found:
            comparison.components[kind] = found
    for check in checks:
        comparison.findings += check(documents)
    return comparison


def _names(title: str, names: list[str]) -> list[str]:
    return [f"- {title}: " + ", ".join(f"`{name}`" for name in names)] if names else []


def _bullet(impact: Impact, source: str, texts: list[str]) -> str:
    by = f" ({source})" if source else ""
    return f"- **{impact.value}**{by}: " + "; ".join(texts)


def _verdict(gravest: Impact | None, prices_moved: bool) -> list[str]:
    if not prices_moved:
        return [VERDICTS[gravest]]
    if gravest in UNRELEASED:
        return [f"{PRICES_MOVED}; {UNRELEASED[gravest]}."]
    return [VERDICTS[gravest], "", f"{PRICES_MOVED}."]


def summary(results: dict[str, tuple[str, str | None, Comparison]]) -> str:
    """The Markdown a pull request carries, from each changed document's name, URL, tag (``None``
    where this SDK wraps none of its operations) and comparison."""
    gravest = min(
        (impact for _, _, c in results.values() if (impact := c.gravest()) is not None),
        key=lambda impact: impact.rank,
        default=None,
    )
    prices_moved = any(c.prices() for _, _, c in results.values())
    lines = ["# Stability's published API documents changed", "", *_verdict(gravest, prices_moved)]
    for name, (url, tag, comparison) in results.items():
        lines += ["", f"## `{name}`", "", f"From <{url}>.", ""]
        ranked = sorted(comparison.findings, key=lambda f: (f.impact.rank, f.source))
        if tag is None:
            lines += ["This SDK wraps none of this document's operations."]
        else:
            lines += [f"In the `{tag}` operations this SDK wraps:", ""]
            in_tag = [_bullet(f.impact, f.source, [str(f)]) for f in ranked if f.in_tag]
            lines += in_tag or ["- Nothing changed."]
        if prices := comparison.prices():
            lines += ["", "Prices, as `make generate` reads them into the catalogue:", ""]
            lines += [f"- {finding}" for finding in prices]
        lines += ["", "In the whole document:", ""]
        for kind, names in comparison.operations.items():
            lines += _names(f"Operations {kind}", names)
        for component, found in comparison.components.items():
            for kind, names in found.items():
                lines += _names(f"Components: {component} {kind}", names)
        elsewhere: dict[tuple[Impact, str], list[str]] = {}
        for finding in ranked:
            if not finding.in_tag and finding.impact is not Impact.PRICE:
                elsewhere.setdefault((finding.impact, finding.source), []).append(str(finding))
        lines += [_bullet(impact, source, texts) for (impact, source), texts in elsewhere.items()]
    return "\n".join(lines) + "\n"
