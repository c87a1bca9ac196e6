"""The redactor: every secret value masked, in text and in log records; nothing else touched."""

from __future__ import annotations

import logging

from resilience.secrets import MASK, Redactor


def test_values_from_secret_looking_variables_are_masked_and_others_kept() -> None:
    r = Redactor.from_environment({"PGPASSWORD": "hunter2-long", "API_TOKEN": "abcd1234", "HOME": "/root",
                                   "PATH": "/usr/bin"}, extra=["extra-secret-value"])
    text = "dsn postgresql://u:hunter2-long@h/db token=abcd1234 home=/root also extra-secret-value"
    assert r.redact(text) == f"dsn postgresql://u:{MASK}@h/db token={MASK} home=/root also {MASK}"


def test_a_secret_containing_another_is_masked_whole() -> None:
    r = Redactor(["abcd", "abcd-efgh-ijkl"])
    assert r.redact("x abcd-efgh-ijkl y abcd") == f"x {MASK} y {MASK}"


def test_short_values_are_not_secrets() -> None:
    assert Redactor(["ab", ""]).redact("ab cab") == "ab cab"


def test_log_records_are_redacted_before_any_handler_writes_them() -> None:
    r = Redactor(["s3cret-pass"])
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "connected to %s", ("u:s3cret-pass@h",), None)
    assert r.log_filter().filter(record)
    assert record.getMessage() == f"connected to u:{MASK}@h"
