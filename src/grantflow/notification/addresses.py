"""Addresses and header text: what may go into a mail header, and whether a user's address can be mailed."""

from __future__ import annotations

import re
from email.errors import MessageError
from email.headerregistry import Address

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def header_text(value: str, limit: int = 200) -> str:
    """Text safe for a mail header: control characters (CR, LF, …) become spaces, runs of space collapse."""
    return " ".join(_CONTROL.sub(" ", value).split())[:limit]


def deliverable_address(email: str) -> tuple[str, str]:
    """(address, "") ready for SMTP, with an IDN domain in its ASCII form; or ("", why it cannot be mailed)."""
    if not email:
        return "", "the user has no e-mail address"
    local, _, domain = email.rpartition("@")
    if not local or not domain or _CONTROL.search(email) or " " in email:
        return "", "the user's e-mail address is not valid"
    if not local.isascii():
        return "", "the user's e-mail address has a non-ASCII local part, which grantflow does not send to"
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return "", "the user's e-mail domain cannot be written in ASCII (IDNA)"
    address = f"{local}@{ascii_domain}"
    try:
        Address(addr_spec=address)
    except (ValueError, MessageError):
        return "", "the user's e-mail address is not valid"
    return address, ""
