"""PrivX AccessRequest wire shapes (docs/privx-compatibility.md)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BeforeValidator, ConfigDict, Field, StrictInt

from grantflow.access_request.models import Decision, RequestAction, RequestStatus
from grantflow.grant.models import GrantState
from grantflow.kit.schema import (
    EmptyAsNone,
    InputModel,
    NullableStr,
    OptionalMoment,
    OutputModel,
    RoleHandle,
    RoleRef,
    Text,
    Upper,
    UserHandle,
)
from grantflow.role.models import GrantType
from grantflow.workflow.models import StepMatch

MAX_FLOATING_HOURS = 8760
OptionalTime = OptionalMoment


class TargetUserRef(InputModel):
    id: Annotated[uuid.UUID | None, EmptyAsNone] = None


class AccessRequestIn(InputModel):
    """A new request. Read-only keys the Go SDK always sends (id, status, steps, …) are ignored."""

    requested_role: RoleRef
    target_user: TargetUserRef | None = None
    action: Annotated[RequestAction, Upper] = RequestAction.GRANT
    grant_type: Annotated[Annotated[GrantType, Upper] | None, EmptyAsNone] = None
    grant_start: OptionalTime = None
    grant_end: OptionalTime = None
    floating_length: Annotated[StrictInt, Field(ge=0, le=MAX_FLOATING_HOURS)] | None = None
    request_justification: Annotated[Text, NullableStr] = ""
    comment: Annotated[Text, NullableStr] = ""
    # Extension (decisions.md §4.2): pick one workflow when several cover the role.
    workflow: Annotated[uuid.UUID | None, EmptyAsNone] = None


class DecisionIn(InputModel):
    step: Annotated[StrictInt, Field(ge=0, le=100)]
    decision: Annotated[Literal["APPROVED", "DENIED"], Upper]
    comment: Annotated[Text, NullableStr] = ""


def _one_or_many(value: object) -> object:
    """`"WAITING"`, `["WAITING", "APPROVED"]`, `""` and `null` are all accepted for a list of values."""
    if value is None or value == "":
        return []
    return [value] if isinstance(value, str) else value


class SearchIn(InputModel):
    """PrivX's AccessRequestSearch plus `status`; any other field is refused rather than silently ignored."""

    model_config = ConfigDict(extra="forbid")

    keywords: Annotated[Text, NullableStr] = ""
    start_time: OptionalTime = None
    end_time: OptionalTime = None
    filter: Annotated[str | None, EmptyAsNone] = None
    # Extension: only requests in this status (or these statuses).
    status: Annotated[list[Annotated[RequestStatus, Upper]], BeforeValidator(_one_or_many), Field(max_length=5)] = []


class ApproverOut(OutputModel):
    id: uuid.UUID
    role: RoleHandle
    decision: Decision
    user: UserHandle | None = None
    decision_time: datetime | None = None
    comment: str | None = None


class RequestStepOut(OutputModel):
    id: uuid.UUID
    name: str
    match: StepMatch
    approvers: list[ApproverOut]


class AccessRequestOut(OutputModel):
    id: uuid.UUID
    name: str
    workflow: uuid.UUID
    requester: UserHandle
    target_user: UserHandle
    requested_role: RoleHandle
    action: RequestAction
    status: RequestStatus
    request_justification: str
    comment: str
    grant_type: GrantType | None
    grant_start: datetime | None
    grant_end: datetime | None
    floating_length: int | None
    requested_grant_type: GrantType | None
    requested_grant_start: datetime | None
    requested_grant_end: datetime | None
    requested_floating_length: int | None
    grant_types: list[GrantType]
    max_active_requests: int
    max_floating_duration: int
    max_time_restricted_duration: int
    target_roles: list[RoleHandle]
    requestor_roles: list[RoleHandle]
    can_bypass_revoke_workflow: bool
    steps: list[RequestStepOut]
    current_step: int = Field(description="extension: 0-based index of the step waiting for decisions")
    approver_can_revoke: bool
    target_role_revoked: bool
    target_role_revocation_time: datetime | None
    target_role_revoked_by: UserHandle | None
    grant_state: GrantState | None = Field(
        default=None, description="extension: where the grant of an approved GRANT request stands"
    )
    grant_started_at: datetime | None = Field(default=None, description="extension: when the grant took effect")
    grant_ends_at: datetime | None = Field(default=None, description="extension: when the grant will end")
    grant_ended_at: datetime | None = Field(default=None, description="extension: when it ended or was revoked")
    author: uuid.UUID
    created: datetime
    updated: datetime
    updated_by: uuid.UUID
