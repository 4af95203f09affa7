"""Talking to an LDAP or Active Directory server with ldap3: sign-in by binding as the user, reading users and
their groups, and a staged connection test.

Everything here is blocking network I/O and runs in a worker thread (`asyncio.to_thread`), never inside a
database transaction. TLS certificates are always verified (against `ca_file` when given, else the system's
CAs); StartTLS that the server does not complete is a failure, never a fall-back to plain LDAP. Every value a
user typed is escaped before it goes into a filter (RFC 4515).
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import ldap3
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars

from grantflow.identity.mapping import DirectoryUser, normal_dn
from grantflow.identity.schemas import LdapConnection

IN_CHAIN = "1.2.840.113556.1.4.1941"  # LDAP_MATCHING_RULE_IN_CHAIN (Active Directory)
PAGE_SIZE = 500


class DirectoryError(Exception):
    """The directory could not be used: `stage` says where it failed, `hint` what to check."""

    def __init__(self, stage: str, message: str, hint: str) -> None:
        super().__init__(message)
        self.stage = stage
        self.message = message
        self.hint = hint


# -- connections ------------------------------------------------------------------------------------------------


def _server(settings: LdapConnection) -> ldap3.Server:
    address = urlsplit(settings.address)
    secure = address.scheme == "ldaps"
    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=settings.ca_file, version=ssl.PROTOCOL_TLS_CLIENT)
    return ldap3.Server(
        address.hostname or "",
        port=address.port or (636 if secure else 389),
        use_ssl=secure,
        tls=tls,
        connect_timeout=settings.timeout_seconds,
        get_info=ldap3.NONE,
    )


@contextmanager
def bound(settings: LdapConnection, dn: str, password: str) -> Iterator[ldap3.Connection]:
    """A connection bound as `dn`, over TLS unless plain LDAP was allowed; DirectoryError when it cannot be."""
    connection = ldap3.Connection(
        _server(settings),
        user=dn or None,  # no DN: an anonymous service bind
        password=password or None,
        receive_timeout=settings.timeout_seconds,
        read_only=True,
    )
    try:
        try:
            connection.open()
        except LDAPException as exc:
            raise _connect_error(settings, exc) from exc
        if settings.starttls:
            try:
                started = connection.start_tls()
            except LDAPException as exc:
                raise DirectoryError("starttls", f"StartTLS failed: {exc}", _TLS_HINT) from exc
            if not started:
                raise DirectoryError("starttls", "the server did not start TLS", _TLS_HINT)
        try:
            if not connection.bind():
                raise DirectoryError("bind", f"the bind was refused: {connection.result.get('description')}", "")
        except LDAPException as exc:
            raise DirectoryError("bind", f"the bind failed: {exc}", "") from exc
        try:
            yield connection
        except LDAPException as exc:  # a search or read the directory refused (a bad filter, a lost connection)
            raise DirectoryError("search", f"the directory refused a search: {exc}", _SEARCH_HINT) from exc
    finally:
        with contextlib.suppress(LDAPException, OSError):  # after a failed TLS handshake the socket is gone
            connection.unbind()


_SEARCH_HINT = "check user_base, user_filter and group_base, and that the service account may read them"
_TLS_HINT = "check ca_file (the CA that signed the server's certificate) and that the address names the certificate"


def _connect_error(settings: LdapConnection, exc: LDAPException) -> DirectoryError:
    text = str(exc)
    if "certificate" in text.lower() or "ssl" in text.lower():
        return DirectoryError("tls", f"TLS failed: {text}", _TLS_HINT)
    return DirectoryError("connect", f"cannot reach {settings.address}: {text}", "check the address, port and firewall")


# -- users and groups -------------------------------------------------------------------------------------------


def _attributes(settings: LdapConnection) -> list[str]:
    return [
        settings.username_attribute,
        settings.display_name_attribute,
        settings.email_attribute,
        settings.member_of_attribute,
    ]


def _first(entry: dict[str, object], name: str) -> str:
    value = entry.get(name)
    if isinstance(value, list):
        return str(value[0]) if value else ""
    return "" if value is None else str(value)


def _values(entry: dict[str, object], name: str) -> list[str]:
    value = entry.get(name)
    if isinstance(value, list):
        return [str(v) for v in value]
    return [] if value in (None, "") else [str(value)]


def _entries(
    connection: ldap3.Connection, base: str, search: str, attributes: list[str]
) -> Iterator[tuple[str, dict[str, object]]]:
    """(dn, attributes) of every entry found, page by page; DirectoryError when the server stops short.

    A list cut off by a size or time limit must never pass for the whole directory: the sync would disable
    everyone beyond the cut.
    """
    for entry in connection.extend.standard.paged_search(
        base, search, ldap3.SUBTREE, attributes=attributes, paged_size=PAGE_SIZE, generator=True
    ):
        if entry.get("type") == "searchResEntry":
            yield str(entry["dn"]), dict(entry.get("attributes", {}))
    outcome = connection.result or {}
    if outcome.get("result", 0) not in (0, 32):  # success, or no such object (an empty base)
        raise DirectoryError(
            "search",
            f"the directory stopped the search: {outcome.get('description')} {outcome.get('message', '')}".strip(),
            "raise the server's size limit for grantflow's service account (OpenLDAP: limits ... size=unlimited;"
            " Active Directory pages without limit)",
        )


def find_user(
    connection: ldap3.Connection, settings: LdapConnection, username: str
) -> tuple[str, dict[str, object]] | None:
    """The one entry whose username attribute is `username`; None when there is none or more than one."""
    search = f"(&{settings.user_filter}({settings.username_attribute}={escape_filter_chars(username)}))"
    found = list(_entries(connection, settings.user_base, search, _attributes(settings)))
    return found[0] if len(found) == 1 else None


def _group_parents(connection: ldap3.Connection, settings: LdapConnection) -> dict[str, set[str]]:
    """Every group under the group base and the groups it is itself a member of (for RECURSIVE nesting)."""
    base = settings.group_base or settings.user_base
    parents: dict[str, set[str]] = {}
    for dn, attributes in _entries(connection, base, "(objectClass=*)", [settings.member_of_attribute]):
        parents[normal_dn(dn)] = {normal_dn(g) for g in _values(attributes, settings.member_of_attribute)}
    return parents


def _closure(direct: Iterable[str], parents: dict[str, set[str]]) -> frozenset[str]:
    seen: set[str] = set()
    todo = [normal_dn(g) for g in direct]
    while todo:
        group = todo.pop()
        if group not in seen:
            seen.add(group)
            todo.extend(parents.get(group, ()))
    return frozenset(seen)


def _in_chain(connection: ldap3.Connection, settings: LdapConnection, dn: str) -> frozenset[str]:
    search = f"(member:{IN_CHAIN}:={escape_filter_chars(dn)})"
    return frozenset(
        normal_dn(g) for g, _ in _entries(connection, settings.group_base or settings.user_base, search, [])
    )


def _walk(connection: ldap3.Connection, settings: LdapConnection, direct: Iterable[str]) -> frozenset[str]:
    """The groups above the direct ones, reading each group's own memberOf (a few base reads per sign-in)."""
    seen: set[str] = set()
    todo = list(direct)
    while todo and len(seen) < 1000:
        group = todo.pop()
        if normal_dn(group) in seen:
            continue
        seen.add(normal_dn(group))
        if connection.search(group, "(objectClass=*)", ldap3.BASE, attributes=[settings.member_of_attribute]):
            for entry in connection.response or []:
                todo.extend(_values(dict(entry.get("attributes", {})), settings.member_of_attribute))
    return frozenset(seen)


class GroupResolver:
    """Groups of users, nested as the source says. For one user (a sign-in) the nesting is walked up group by
    group; for everyone (a sync) the group tree is read once."""

    def __init__(self, connection: ldap3.Connection, settings: LdapConnection, *, whole_tree: bool) -> None:
        self._connection = connection
        self._settings = settings
        self._parents: dict[str, set[str]] | None = _group_parents(connection, settings) if whole_tree else None

    def groups(self, dn: str, attributes: dict[str, object]) -> frozenset[str]:
        direct = _values(attributes, self._settings.member_of_attribute)
        match self._settings.nested_groups:
            case "IN_CHAIN":
                return _in_chain(self._connection, self._settings, dn) | {normal_dn(g) for g in direct}
            case "RECURSIVE" if self._parents is not None:
                return _closure(direct, self._parents)
            case "RECURSIVE":
                return _walk(self._connection, self._settings, direct)
        return frozenset(normal_dn(g) for g in direct)


def _user(dn: str, attributes: dict[str, object], settings: LdapConnection, groups: frozenset[str]) -> DirectoryUser:
    return DirectoryUser(
        dn=dn,
        username=_first(attributes, settings.username_attribute),
        display_name=_first(attributes, settings.display_name_attribute),
        email=_first(attributes, settings.email_attribute),
        groups=groups,
    )


# -- what grantflow asks of a directory -------------------------------------------------------------------------


def authenticate(settings: LdapConnection, bind_password: str, username: str, password: str) -> DirectoryUser | None:
    """The user when `password` binds as their entry; None for an unknown name or a wrong password.

    An empty password is refused before any bind: a DN with an empty password is an unauthenticated bind, which
    Active Directory answers as a success.
    """
    if not password or not username:
        return None
    with bound(settings, settings.bind_dn, bind_password) as service:
        found = find_user(service, settings, username)
        if found is None:
            return None
        dn, attributes = found
        try:
            with bound(settings, dn, password):
                pass
        except DirectoryError as refused:
            if refused.stage == "bind":
                return None
            raise
        return _user(
            dn, attributes, settings, GroupResolver(service, settings, whole_tree=False).groups(dn, attributes)
        )


def all_users(settings: LdapConnection, bind_password: str) -> list[DirectoryUser]:
    """Every user the source has, with their groups (one connection, the group tree read once)."""
    with bound(settings, settings.bind_dn, bind_password) as service:
        # Each search is read to its end before the next starts: interleaved, they would spoil the paging.
        people = list(_entries(service, settings.user_base, settings.user_filter, _attributes(settings)))
        resolver = GroupResolver(service, settings, whole_tree=True)
        return [
            _user(dn, attributes, settings, resolver.groups(dn, attributes))
            for dn, attributes in people
            if _first(attributes, settings.username_attribute)
        ]


def test_connection(settings: LdapConnection, bind_password: str) -> tuple[dict[str, str], DirectoryError | None]:
    """Each stage reached (connect, TLS, service bind, user search), or the error of the first that failed."""
    details = {
        "address": settings.address,
        "tls": "ldaps"
        if settings.address.startswith("ldaps")
        else ("starttls" if settings.starttls else "none (plain LDAP allowed)"),
    }
    try:
        with bound(settings, settings.bind_dn, bind_password) as service:
            details["bind"] = "ok"
            sample = next(_entries(service, settings.user_base, settings.user_filter, _attributes(settings)), None)
            details["user_search"] = "found users" if sample else "no user matches user_filter under user_base"
    except DirectoryError as failed:
        details[failed.stage] = failed.message
        return details, failed
    return details, None
