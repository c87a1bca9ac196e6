"""Label selectors: the string form users write (``app=x,role in (a,b)``) as API objects."""

import re
from typing import Any

from chaoslib.exceptions import ActivityFailed

_SET = re.compile(r"^\s*([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split(selector: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in selector:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def label_selector(selector: str) -> dict[str, Any]:
    """``{"matchLabels": ..., "matchExpressions": ...}`` for a selector string; ``ActivityFailed`` if malformed."""
    labels: dict[str, str] = {}
    exprs: list[dict[str, Any]] = []
    for part in _split(selector):
        if m := _SET.match(part):
            values = [v.strip() for v in m.group(3).split(",") if v.strip()]
            exprs.append({"key": m.group(1), "operator": "In" if m.group(2) == "in" else "NotIn", "values": values})
        elif "!=" in part:
            key, value = (s.strip() for s in part.split("!=", 1))
            exprs.append({"key": key, "operator": "NotIn", "values": [value]})
        elif "=" in part:
            key, value = (s.strip() for s in part.replace("==", "=").split("=", 1))
            labels[key] = value
        elif part.startswith("!"):
            exprs.append({"key": part[1:].strip(), "operator": "DoesNotExist"})
        elif re.fullmatch(r"[\w./-]+", part):
            exprs.append({"key": part, "operator": "Exists"})
        else:
            raise ActivityFailed(f"label selector {selector!r}: cannot parse {part!r}")
    result: dict[str, Any] = {}
    if labels:
        result["matchLabels"] = labels
    if exprs:
        result["matchExpressions"] = exprs
    return result


def equality_labels(selector: str, key: str) -> dict[str, str]:
    """The ``k=v`` labels of a selector that may only use equality (``ActivityFailed`` naming ``key`` otherwise)."""
    parsed = label_selector(selector)
    if parsed.get("matchExpressions") or not parsed.get("matchLabels"):
        raise ActivityFailed(f"configuration {key}={selector!r}: use only key=value labels here")
    return dict(parsed["matchLabels"])


def label_value(text: str) -> str:
    """``text`` shortened to a valid label value (63 characters, alphanumeric at both ends)."""
    value = re.sub(r"[^A-Za-z0-9_.-]", "-", text)[:63]
    return value.strip("-_.") or "none"
