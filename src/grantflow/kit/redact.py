"""Keep secrets out of the access log: the token endpoint also takes its parameters in the query string."""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SECRET_PARAMETERS = frozenset({"password", "client_secret", "refresh_token", "code", "code_verifier", "token"})


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    if not parts.query:
        return url
    pairs = [
        (k, "***" if k.lower() in SECRET_PARAMETERS else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(pairs, safe="*")))


class RedactQuerySecrets(logging.Filter):
    """uvicorn.access records carry (client, method, path with query, http version, status) as args."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3:
            path = record.args[2]
            if isinstance(path, str):
                record.args = (*record.args[:2], redact_url(path), *record.args[3:])
        return True


def install() -> None:
    logging.getLogger("uvicorn.access").addFilter(RedactQuerySecrets())
