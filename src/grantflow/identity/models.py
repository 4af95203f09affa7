"""Sources and the directory groups of their users, as last read."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from grantflow.db import Base, Stamped, uuid_pk
from grantflow.kit.clock import utc_now


class SourceKind(StrEnum):
    LOCAL = "LOCAL"  # grantflow's own user store: exactly one, made at first start
    LDAP = "LDAP"  # OpenLDAP, 389 DS, Active Directory
    OIDC = "OIDC"  # an OpenID Connect provider


class OidcLogin(Base):
    """The nonce of an ID token that signed someone in, until it expires: the same token is not taken twice."""

    __tablename__ = "oidc_logins"

    nonce_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires: Mapped[datetime] = mapped_column(index=True)


class Source(Stamped, Base):
    """A place people come from. The connection settings are JSON; the one secret (bind password) is sealed."""

    __tablename__ = "sources"

    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(10))
    enabled: Mapped[bool] = mapped_column(default=True)
    comment: Mapped[str] = mapped_column(String(4000), default="")
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    secret_sealed: Mapped[str | None] = mapped_column(Text, default=None)
    last_sync: Mapped[datetime | None] = mapped_column(default=None)
    last_sync_result: Mapped[str] = mapped_column(String(1000), default="")
    created: Mapped[datetime] = mapped_column(default=utc_now)


class UserGroup(Base):
    """One directory group a user belongs to (directly or through nesting), as the source last said."""

    __tablename__ = "user_groups"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    source_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True)
    group: Mapped[str] = mapped_column(String(1000), primary_key=True)  # a DN, compared case-insensitively
