"""The one edit of a checker config both backends of the config change make: one field set, checked.

The local stack's ``conf/checkers.yaml`` and the Kubernetes ConfigMap key hold the same file
(``sqlaudit/checkers.yaml``); :func:`edit_threshold` changes one numeric field in it, keeping the
rest of the text (comments included) where it can, and refuses what the service itself would
refuse (``sqlaudit.config.load_checkers_config``).
"""

import re
import tempfile
from pathlib import Path
from typing import Any

import yaml
from chaoslib.exceptions import ActivityFailed

from sqlaudit.config import ConfigError, load_checkers_config


def _scalar(value: int | float) -> str:
    return str(value) if isinstance(value, int) else repr(value)


def edit_threshold(text: str, checker: str, field: str, value: int | float, what: str,
                   where: str) -> tuple[str, int | float, int | float]:
    """``(new text, old value, new value)`` of checker config ``text`` with ``<checker>.<field>`` set to ``value``.

    Only the field's line changes when that gives the same document as a full rewrite would (the
    comments stay); otherwise the YAML is dumped anew. ``value`` is a number (checked by the public
    activity). ``ActivityFailed`` (naming ``where``) for text that is no checker config, an unknown
    checker or field, a value with a fraction for an integer field, or one the service's own
    validation refuses.
    """
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ActivityFailed(f"{what}: {where} is not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise ActivityFailed(f"{what}: {where} is not a mapping of checkers")
    if checker not in doc or not isinstance(doc[checker], dict):
        raise ActivityFailed(f"{what}: no checker {checker!r} in {where} (checkers: "
                             f"{', '.join(k for k, v in doc.items() if isinstance(v, dict))})")
    old = doc[checker].get(field)
    if field not in doc[checker] or isinstance(old, bool) or not isinstance(old, int | float):
        raise ActivityFailed(f"{what}: {checker} has no numeric field {field!r} in {where}")
    number = float(value)
    if isinstance(old, int) and not number.is_integer():
        raise ActivityFailed(f"{what}: {checker}.{field} is an integer; value={value!r} is not")
    new: int | float = int(number) if isinstance(old, int) else number
    wanted = {**doc, checker: {**doc[checker], field: new}}
    with tempfile.TemporaryDirectory(prefix="checkers-") as tmp:
        candidate = Path(tmp) / "checkers.yaml"
        candidate.write_text(yaml.safe_dump(wanted, sort_keys=False))
        try:
            load_checkers_config(candidate, env={})  # the service's own validation: refuse what it would refuse
        except ConfigError as exc:
            raise ActivityFailed(f"{what}: the service would refuse {value!r}: "
                                 f"{str(exc).replace(str(candidate), where)}") from None
    return _one_line_edit(text, checker, field, new, wanted) or yaml.safe_dump(wanted, sort_keys=False), old, new


def _one_line_edit(text: str, checker: str, field: str, new: int | float, wanted: dict[str, Any]) -> str | None:
    """``text`` with only the line of ``checker.field`` changed, or ``None`` if that does not give ``wanted``."""
    lines = text.splitlines(keepends=True)
    block = re.compile(rf"^{re.escape(checker)}\s*:\s*(#.*)?$")
    start = next((i for i, line in enumerate(lines) if block.match(line.rstrip("\r\n"))), None)
    if start is None:
        return None
    entry = re.compile(rf"^(\s+{re.escape(field)}\s*:\s*)([^#\s][^#]*?)(\s*(#.*)?)$")
    for i in range(start + 1, len(lines)):
        body = lines[i].rstrip("\r\n")
        if body and not body[0].isspace() and not body.startswith("#"):
            return None  # left the checker's block
        if m := entry.match(body):
            lines[i] = f"{m.group(1)}{_scalar(new)}{m.group(3)}{lines[i][len(body):]}"
            edited = "".join(lines)
            try:
                return edited if yaml.safe_load(edited) == wanted else None
            except yaml.YAMLError:
                return None
    return None
