from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, TypedDict

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from grantflow.db import Base, Stamped, uuid_pk
from grantflow.kit.clock import utc_now

ADMIN_ROLE = "privx-admin"
USER_ROLE = "privx-user"


class StoredRoleRef(TypedDict):
    """A role as JSON columns keep it (workflows, request snapshots): its id and its name at the time."""

    id: str
    name: str


def stored_ref(role_id: uuid.UUID, name: str) -> StoredRoleRef:
    return {"id": str(role_id), "name": name}


class MembershipSource(StrEnum):
    MAPPED = "MAPPED"  # given directly by an administrator: may approve requests
    GRANTED = "GRANTED"  # made by an approved request: never confers approval rights
    FLOATING = "FLOATING"  # given directly as floating hours, started at first use: no approval rights either
    IMPLICIT = "IMPLICIT"  # the role's source rules match the user's directory groups: may approve, as MAPPED


# Memberships that make their holder an approver for the role.
APPROVING_SOURCES = (MembershipSource.MAPPED, MembershipSource.IMPLICIT)
NO_SOURCE_RULES: dict[str, Any] = {"type": "GROUP", "match": "ANY", "rules": []}


class GrantType(StrEnum):
    PERMANENT = "PERMANENT"
    TIME_RESTRICTED = "TIME_RESTRICTED"
    FLOATING = "FLOATING"


class Role(Stamped, Base):
    __tablename__ = "roles"

    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str] = mapped_column(String(200), unique=True)
    comment: Mapped[str] = mapped_column(String(4000), default="")
    permissions: Mapped[list[Any]] = mapped_column(default=list)
    system: Mapped[bool] = mapped_column(default=False)
    # PrivX's mapping of directory groups to the role (identity/mapping.py): whoever matches holds it implicitly.
    source_rules: Mapped[dict[str, Any]] = mapped_column(default=lambda: dict(NO_SOURCE_RULES))
    created: Mapped[datetime] = mapped_column(default=utc_now)


class Membership(Base):
    """One reason a user holds a role: a direct mapping, or one approved request's grant.

    A user holds a role while any of its rows is in force, so overlapping grants never cut each other short.
    Every user also holds `privx-user` implicitly, without a row.
    """

    __tablename__ = "memberships"
    __table_args__ = (
        Index(
            "uq_memberships_mapped",
            "user_id",
            "role_id",
            unique=True,
            sqlite_where=text("source = 'MAPPED'"),
            postgresql_where=text("source = 'MAPPED'"),
        ),
        Index(
            "uq_memberships_implicit",
            "user_id",
            "role_id",
            unique=True,
            sqlite_where=text("source = 'IMPLICIT'"),
            postgresql_where=text("source = 'IMPLICIT'"),
        ),
        Index("ix_memberships_role_id", "role_id"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("roles.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(10))
    request_id: Mapped[uuid.UUID | None] = mapped_column(unique=True, default=None)
    grant_type: Mapped[str] = mapped_column(String(20), default=GrantType.PERMANENT)
    grant_start: Mapped[datetime | None] = mapped_column(default=None)
    grant_end: Mapped[datetime | None] = mapped_column(default=None)
    floating_length: Mapped[int | None] = mapped_column(default=None)
    created: Mapped[datetime] = mapped_column(default=utc_now)
