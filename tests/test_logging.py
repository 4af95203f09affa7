"""Secrets sent in a query string never reach the access log."""

from __future__ import annotations

import logging

from grantflow.kit.redact import RedactQuerySecrets, redact_url


def test_secret_query_values_are_redacted() -> None:
    url = "/auth/api/v1/oauth/token?grant_type=password&username=admin&password=hunter2&client_secret=s3"
    redacted = redact_url(url)
    assert "hunter2" not in redacted
    assert "s3" not in redacted
    assert "username=admin" in redacted
    assert redact_url("/workflow-engine/api/v1/requests?filter=all") == "/workflow-engine/api/v1/requests?filter=all"


def test_access_log_record_is_redacted() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "POST", "/auth/api/v1/oauth/token?password=hunter2&refresh_token=r1", "1.1", 200),
        None,
    )
    assert RedactQuerySecrets().filter(record)
    assert "hunter2" not in record.getMessage()
    assert "r1" not in record.getMessage()
