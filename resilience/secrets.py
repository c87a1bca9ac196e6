"""Keep secret values out of every file a run writes and out of its logs.

Secrets (database passwords, Kafka SASL credentials, a Grafana token) reach the suite
only through the environment or Chaos Toolkit ``secrets``, never through files in git.
The :class:`Redactor` knows their values and replaces each occurrence with ``***``
in everything written to a run directory, and in log records.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping

SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|APIKEY|SASL|CREDENTIAL|PRIVATE_KEY)", re.I)
MASK = "***"
MIN_LENGTH = 4  # shorter values would mask ordinary words and numbers


class Redactor:
    """Replaces known secret values with ``***``."""

    def __init__(self, values: Iterable[str]) -> None:
        unique = {v for v in values if v and len(v) >= MIN_LENGTH}
        # Longest first, so a secret that contains another is masked whole.
        self.values = sorted(unique, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(v) for v in self.values)) if self.values else None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None, extra: Iterable[str] = ()) -> Redactor:
        """Every environment variable whose name looks secret (``*PASSWORD*``, ``*TOKEN*``...), plus ``extra``."""
        env = os.environ if environ is None else environ
        return cls([v for k, v in env.items() if SECRET_NAME.search(k)] + list(extra))

    def redact(self, text: str) -> str:
        return self._pattern.sub(MASK, text) if self._pattern else text

    def log_filter(self) -> logging.Filter:
        """A filter that redacts the formatted message of every record it passes."""
        redactor = self

        class _Filter(logging.Filter):
            def filter(self, record: logging.LogRecord) -> bool:
                if redactor._pattern is not None:
                    record.msg = redactor.redact(record.getMessage())
                    record.args = None
                return True

        return _Filter()
