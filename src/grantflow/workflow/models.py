from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, TypedDict

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from grantflow.db import Base, uuid_pk
from grantflow.kit.clock import utc_now
from grantflow.role.models import StoredRoleRef


class WorkflowAction(StrEnum):
    GRANT = "GRANT"
    REMOVE = "REMOVE"
    BOTH = "BOTH"


class StepMatch(StrEnum):
    ANY = "ANY"
    ALL = "ALL"
    AUTO = "AUTO"


class StoredApprover(TypedDict):
    id: str
    role: StoredRoleRef


class StoredStep(TypedDict):
    id: str
    name: str
    match: str
    approvers: list[StoredApprover]


class Workflow(Base):
    """A workflow template. Steps and role lists are JSON: requests copy them, nothing queries into them."""

    __tablename__ = "workflows"

    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str] = mapped_column(String(200))
    comment: Mapped[str] = mapped_column(String(4000), default="")
    action: Mapped[str] = mapped_column(String(10), default=WorkflowAction.GRANT)
    grant_types: Mapped[list[Any]] = mapped_column(default=list)
    max_time_restricted_duration: Mapped[int] = mapped_column(default=0)
    max_floating_duration: Mapped[int] = mapped_column(default=0)
    max_active_requests: Mapped[int] = mapped_column(default=1)
    can_bypass_revoke_workflow: Mapped[bool] = mapped_column(default=False)
    requires_justification: Mapped[bool] = mapped_column(default=False)
    target_roles: Mapped[list[StoredRoleRef]] = mapped_column(JSON, default=list)
    requester_roles: Mapped[list[StoredRoleRef]] = mapped_column(JSON, default=list)
    steps: Mapped[list[StoredStep]] = mapped_column(JSON, default=list)
    author: Mapped[uuid.UUID | None] = mapped_column(default=None)
    updated_by: Mapped[uuid.UUID | None] = mapped_column(default=None)
    created: Mapped[datetime] = mapped_column(default=utc_now, index=True)
    updated: Mapped[datetime] = mapped_column(default=utc_now)

    target_links: Mapped[list[WorkflowTargetRole]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, lazy="raise"
    )


class WorkflowTargetRole(Base):
    """Index of which workflows grant which role: how a request finds its workflow."""

    __tablename__ = "workflow_target_roles"

    workflow_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"), primary_key=True)
    role_id: Mapped[uuid.UUID] = mapped_column(primary_key=True, index=True)
