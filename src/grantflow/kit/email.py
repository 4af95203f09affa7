"""E-mail addresses: which ones grantflow stores and mails, and their ASCII form for SMTP.

Checked where an address is stored (user profiles, the sender address) and again before a mail is written, so
that an address stored by an older version cannot fail a request or a scheduler pass either. The rules are the
mailable subset of RFC 5321/5322: a dot-atom local part in ASCII (no quoted strings), a host name domain (no
address literals) in its IDNA 2008 form, at most 64 + 1 + 253 characters, and 254 for the whole address.
"""

from __future__ import annotations

import re

import idna

_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
MAX_ADDRESS = 254  # RFC 5321's path limit (256) without its angle brackets


class NotMailable(ValueError):
    """The address cannot be mailed; the message says why, for a person."""


def ascii_address(email: str) -> str:
    """The address as SMTP carries it (an IDN domain in ASCII); NotMailable when it cannot be mailed."""
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain:
        raise NotMailable("not an e-mail address: it needs a name, an @ and a domain")
    if not local.isascii():
        raise NotMailable("a name before the @ with non-ASCII letters cannot be mailed")
    if len(local) > 64 or not _LOCAL.match(local):
        raise NotMailable("the name before the @ has characters or dots an e-mail address cannot have")
    try:
        ascii_domain = idna.encode(domain.rstrip("."), uts46=True).decode("ascii")
    except idna.IDNAError:
        raise NotMailable("the domain after the @ is not a host name") from None
    if len(ascii_domain) > 253 or not all(_LABEL.match(label) for label in ascii_domain.split(".")):
        raise NotMailable("the domain after the @ is not a host name")
    address = f"{local}@{ascii_domain}"
    if len(address) > MAX_ADDRESS:
        raise NotMailable(f"the address is longer than {MAX_ADDRESS} characters in its ASCII form")
    return address


def checked_address(email: str) -> str:
    """For schema validators: an empty value or a mailable address, kept as it was written."""
    if email:
        ascii_address(email)
    return email
