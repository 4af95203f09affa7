"""Source rules: which directory groups give a role (pure; the role store keeps the rules, identity applies them).

A RULE names a source and a group (`search_string`: a group DN for LDAP, optionally written `(memberOf=<DN>)`); a
user matches it when that source lists them in that group, nesting included. A GROUP of rules matches when ANY
or ALL of its rules do; an empty group matches nobody.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from typing import Any

MEMBER_OF = "(memberof="


@dataclass(frozen=True)
class DirectoryUser:
    """A person as a source describes them: their entry (a DN, or an OpenID `sub`), names and groups."""

    dn: str
    username: str
    display_name: str
    email: str
    groups: frozenset[str]  # normalised (normal_dn), nested groups included


def normal_dn(dn: str) -> str:
    """DNs compare case-insensitively, whatever spacing the server or an administrator used after commas."""
    return ",".join(part.strip() for part in dn.split(",")).lower()


def rule_group(search_string: str) -> str:
    """The group a RULE names, normalised: `(memberOf=cn=x,dc=y)` and `cn=x, dc=y` are the same group."""
    text = search_string.strip()
    if text.lower().startswith(MEMBER_OF) and text.endswith(")"):
        text = text[len(MEMBER_OF) : -1]
    return normal_dn(text)


def matches(rule: Mapping[str, Any], groups: Mapping[str, Set[str]]) -> bool:
    """Whether a user whose groups per source id are `groups` matches the rule."""
    if rule.get("type") == "RULE":
        return rule_group(str(rule.get("search_string", ""))) in groups.get(str(rule.get("source")), set())
    children = [matches(child, groups) for child in rule.get("rules") or []]
    if not children:
        return False
    return all(children) if rule.get("match") == "ALL" else any(children)


def has_rules(rule: Mapping[str, Any]) -> bool:
    return bool(rule.get("rules")) or rule.get("type") == "RULE"
