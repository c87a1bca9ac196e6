"""Statement normalisation used by the Frequency checker (documented in docs/checkers.md)."""

from __future__ import annotations

import re

__all__ = ["normalize_sql"]

_STRING = re.compile(r"'(?:[^']|'')*'")
_NUMBER = re.compile(r"(?<![\w$.])[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w$])")
_LIST = re.compile(r"\(\s*\?(?:\s*,\s*\?)*\s*\)")
_SPACE = re.compile(r"\s+")


def normalize_sql(sql: str) -> str:
    """Normalise a statement so that executions differing only in literals compare equal.

    In order: single-quoted strings -> ``?``; numbers (not part of an identifier) -> ``?``;
    a parenthesised list of only ``?`` -> ``(?)``; whitespace runs -> one space; trailing
    ``;`` and surrounding spaces removed; lower-cased.

    >>> normalize_sql("SELECT * FROM t1 WHERE id IN (1, 2,3) AND name = 'O''Brien';")
    'select * from t1 where id in (?) and name = ?'
    """
    out = _STRING.sub("?", sql)
    out = _NUMBER.sub("?", out)
    out = _LIST.sub("(?)", out)
    out = _SPACE.sub(" ", out).strip().rstrip(";").strip()
    return out.lower()
