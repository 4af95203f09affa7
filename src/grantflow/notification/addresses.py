"""Addresses and header text: what may go into a mail header, and whether a user's address can be mailed."""

from __future__ import annotations

import re

from grantflow.kit.email import NotMailable, ascii_address

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def header_text(value: str, limit: int = 200) -> str:
    """Text safe for a mail header: control characters (CR, LF, …) become spaces, runs of space collapse."""
    return " ".join(_CONTROL.sub(" ", value).split())[:limit]


def deliverable_address(email: str) -> tuple[str, str]:
    """(address, "") ready for SMTP, with an IDN domain in its ASCII form; or ("", why it cannot be mailed)."""
    if not email:
        return "", "the user has no e-mail address"
    try:
        return ascii_address(email), ""
    except NotMailable as why:
        return "", f"the user's e-mail address cannot be mailed: {why}"
