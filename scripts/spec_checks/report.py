"""One document's ``Comparison`` (what moved, by name, and every check's findings), and the
``summary`` a pull request carries: the verdict for the wrapped operations first, then each
change to them in plain words, the gravest first, then what moved in the whole document."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from spec_checks.base import Check, Documents, Finding, Impact, normalized, operations

__all__ = ["VERDICTS", "Comparison", "compare", "summary"]

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


def summary(results: dict[str, tuple[str, str, Comparison]]) -> str:
    """The Markdown a pull request carries, from each changed document's name, URL, tag and
    comparison."""
    gravest = min(
        (impact for _, _, c in results.values() if (impact := c.gravest()) is not None),
        key=lambda impact: impact.rank,
        default=None,
    )
    lines = ["# Stability's published API documents changed", "", VERDICTS[gravest]]
    for name, (url, tag, comparison) in results.items():
        lines += ["", f"## `{name}`", "", f"From <{url}>.", ""]
        lines += [f"In the `{tag}` operations this SDK wraps:", ""]
        ranked = sorted(comparison.findings, key=lambda f: (f.impact.rank, f.source))
        in_tag = [_bullet(f.impact, f.source, [str(f)]) for f in ranked if f.in_tag]
        lines += in_tag or ["- Nothing changed."]
        lines += ["", "In the whole document:", ""]
        for kind, names in comparison.operations.items():
            lines += _names(f"Operations {kind}", names)
        for component, found in comparison.components.items():
            for kind, names in found.items():
                lines += _names(f"Components: {component} {kind}", names)
        elsewhere: dict[tuple[Impact, str], list[str]] = {}
        for finding in ranked:
            if not finding.in_tag:
                elsewhere.setdefault((finding.impact, finding.source), []).append(str(finding))
        lines += [_bullet(impact, source, texts) for (impact, source), texts in elsewhere.items()]
    return "\n".join(lines) + "\n"
