from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from grantflow.db import Base, Stamped, uuid_pk
from grantflow.kit.clock import utc_now


class SourceType(StrEnum):
    LOCAL = "LOCAL"
    API_CLIENT = "API-CLIENT"
    LDAP = "LDAP"  # from an LDAP / Active Directory source: signs in by binding to the directory
    OIDC = "OIDC"  # from an OpenID Connect provider: signs in there, never with a password here


DIRECTORY_TYPES = frozenset({SourceType.LDAP, SourceType.OIDC})


class User(Stamped, Base):
    """A person or API client that can log in; the id is also its role-store id."""

    __tablename__ = "users"
    __table_args__ = (Index("ix_users_source_entry", "source_id", "external_id"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    username: Mapped[str] = mapped_column(String(200), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(320), default="")
    password_hash: Mapped[str | None] = mapped_column(String(200), default=None)
    source_type: Mapped[str] = mapped_column(String(20), default=SourceType.LOCAL)
    # API clients: the secret sealed with GRANTFLOW_SECRET_KEY, as PrivX returns it to api-clients-manage holders.
    secret_sealed: Mapped[str | None] = mapped_column(Text, default=None)
    # The optional PrivX profile fields (full_name, comment, job_title, …), stored as given.
    profile: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Directory users: the source they come from, their entry there (the DN), and whether the source still has them.
    source_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    external_id: Mapped[str] = mapped_column(String(1000), default="")
    disabled: Mapped[bool] = mapped_column(default=False)
    author: Mapped[uuid.UUID | None] = mapped_column(default=None)
    updated_by: Mapped[uuid.UUID | None] = mapped_column(default=None)
    created: Mapped[datetime] = mapped_column(default=utc_now)

    @property
    def shown_name(self) -> str:
        return self.display_name or self.username
