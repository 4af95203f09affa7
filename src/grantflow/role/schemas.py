"""Role and user handles as PrivX embeds them in workflows and requests."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, StrictBool, StrictInt, StrictStr

from grantflow.kit.schema import (
    NAME_MAX,
    TEXT_MAX,
    EmptyAsNone,
    InputModel,
    NullableList,
    NullableStr,
    OptionalMoment,
    OutputModel,
    Upper,
)


class RoleIn(InputModel):
    """A role as clients write it: name, comment and permissions count; the rest of PrivX's role is ignored."""

    name: Annotated[StrictStr, Field(min_length=1, max_length=NAME_MAX)]
    comment: Annotated[StrictStr, NullableStr, Field(max_length=TEXT_MAX)] = ""
    permissions: Annotated[list[StrictStr], NullableList, Field(max_length=100)] = []


class RoleOut(OutputModel):
    id: uuid.UUID
    name: str
    comment: str
    permissions: list[str]
    system: bool
    explicit_count: int
    member_count: int
    created: datetime
    updated: datetime
    # Fields PrivX clients read or echo back; grantflow has no source rules, access groups or principal keys.
    tags: list[str] = []
    access_group_id: str = ""
    permit_agent: bool = False
    source_rules: dict[str, Any] = {"type": "GROUP", "match": "ANY", "rules": []}
    principal_public_key_strings: list[str] = []


class GrantPeriod(OutputModel):
    grant_start: datetime | None
    grant_end: datetime | None


class HeldRole(OutputModel):
    """A role as a user holds it (docs/privx-compatibility.md)."""

    id: uuid.UUID
    name: str
    explicit: bool
    implicit: bool
    grant_type: str
    grant_start: datetime | None = None
    grant_end: datetime | None = None
    grant_validity_periods: list[GrantPeriod] = []
    floating_length: int | None = None
    source: str = ""
    granted_by_request: uuid.UUID | None = Field(default=None, description="extension: the request that granted it")


class HeldRoleIn(InputModel):
    """One entry of PUT /users/{id}/roles; only `id`, `explicit` and the grant fields count."""

    id: uuid.UUID
    explicit: StrictBool = True
    grant_type: Annotated[str | None, EmptyAsNone, Upper] = None
    grant_start: OptionalMoment = None
    grant_end: OptionalMoment = None
    # FLOATING: hours from the user's first use (the Go SDK sends 0 for other grant types).
    floating_length: Annotated[StrictInt, Field(ge=0, le=8760)] | None = None


class RoleSearchIn(InputModel):
    name: Annotated[list[StrictStr], NullableList, Field(max_length=100)] = []
    keywords: Annotated[StrictStr, NullableStr, Field(max_length=TEXT_MAX)] = ""


class UserSearchIn(InputModel):
    keywords: Annotated[StrictStr, NullableStr, Field(max_length=TEXT_MAX)] = ""
    user_id: Annotated[list[uuid.UUID], NullableList, Field(max_length=1000)] = []


class RoleStoreUser(OutputModel):
    """A user as the role store shows it (docs/privx-compatibility.md)."""

    id: uuid.UUID
    source_user_id: uuid.UUID
    principal: str
    full_name: str
    display_name: str
    email: str
    source_type: str
    source: str = ""
    created: datetime
    updated: datetime
    roles: list[HeldRole] | None = None
    permissions: list[str] | None = None
