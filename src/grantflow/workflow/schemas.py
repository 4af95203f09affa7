"""PrivX Workflow wire shapes (docs/privx-compatibility.md)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AliasChoices, Field, StrictBool, StrictInt

from grantflow.kit.schema import (
    InputModel,
    Name,
    NullableList,
    NullableStr,
    OutputModel,
    RoleHandle,
    RoleRef,
    Text,
    Upper,
)
from grantflow.role.models import GrantType
from grantflow.workflow.models import StepMatch, WorkflowAction

MAX_STEPS = 3
MAX_ROLES = 50


class ApproverIn(InputModel):
    role: RoleRef


class StepIn(InputModel):
    name: Name
    match: Annotated[StepMatch, Upper]
    approvers: Annotated[list[ApproverIn], NullableList, Field(max_length=MAX_ROLES)] = []


class WorkflowIn(InputModel):
    """A workflow as clients write it; read-only keys (id, author, created, …) are ignored."""

    name: Name
    comment: Annotated[Text, NullableStr] = ""
    action: Annotated[WorkflowAction, Upper] = WorkflowAction.GRANT
    grant_types: Annotated[list[Annotated[GrantType, Upper]], NullableList, Field(max_length=3)] = []
    max_time_restricted_duration: Annotated[StrictInt, Field(ge=0, le=3650)] = 0
    max_floating_duration: Annotated[StrictInt, Field(ge=0, le=8760)] = 0
    # 0 or absent means 1, -1 means unlimited (decisions.md §4).
    max_active_requests: Annotated[StrictInt, Field(ge=-1, le=10000)] = 1
    can_bypass_revoke_workflow: StrictBool = False
    requires_justification: StrictBool = False
    target_roles: Annotated[list[RoleRef], NullableList, Field(min_length=1, max_length=MAX_ROLES)]
    requester_roles: Annotated[list[RoleRef], NullableList, Field(max_length=MAX_ROLES)] = Field(
        default=[], validation_alias=AliasChoices("requester_roles", "requestor_roles")
    )
    steps: Annotated[list[StepIn], NullableList, Field(min_length=1, max_length=MAX_STEPS)]


class ApproverOut(OutputModel):
    id: uuid.UUID
    role: RoleHandle


class StepOut(OutputModel):
    id: uuid.UUID
    name: str
    match: StepMatch
    approvers: list[ApproverOut]


class WorkflowOut(OutputModel):
    id: uuid.UUID
    name: str
    comment: str
    action: WorkflowAction
    grant_types: list[GrantType]
    max_time_restricted_duration: int
    max_floating_duration: int
    max_active_requests: int
    can_bypass_revoke_workflow: bool
    requires_justification: bool
    target_roles: list[RoleHandle]
    requester_roles: list[RoleHandle]
    steps: list[StepOut]
    author: uuid.UUID | None
    created: datetime
    updated: datetime
    updated_by: uuid.UUID | None


class RequestableRole(OutputModel):
    """A role the caller may request, aggregated over the workflows they may use (§3.7)."""

    id: uuid.UUID
    name: str
    action: WorkflowAction
    grant_types: list[GrantType]
    max_floating_duration: int
    max_time_restricted_duration: int
