"""Role and user handles as PrivX embeds them in workflows and requests."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, StrictInt, StrictStr, model_validator

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


class SourceRuleIn(InputModel):
    """PrivX's source rule: a GROUP of rules (ANY or ALL must match), or a RULE naming a source and a group."""

    # Go sends "" and null for what it leaves unset: GROUP and ANY then.
    type: Annotated[Literal["GROUP", "RULE"] | None, Upper, EmptyAsNone] = "GROUP"
    match: Annotated[Literal["ANY", "ALL"] | None, Upper, EmptyAsNone] = "ANY"
    source: Annotated[uuid.UUID | None, EmptyAsNone] = None
    search_string: Annotated[StrictStr, NullableStr, Field(max_length=2000)] = ""
    rules: Annotated[list[SourceRuleIn], NullableList, Field(max_length=100)] = []

    @model_validator(mode="after")
    def _complete(self) -> SourceRuleIn:
        if self.type == "RULE" and (self.source is None or not self.search_string):
            raise ValueError("a RULE names its source and a search_string (the group)")
        return self

    def stored(self) -> dict[str, Any]:
        """The rule as the role keeps it (JSON), with only the fields its type uses."""
        if self.type == "RULE":
            return {"type": "RULE", "source": str(self.source), "search_string": self.search_string}
        return {"type": "GROUP", "match": self.match or "ANY", "rules": [r.stored() for r in self.rules]}


class RoleIn(InputModel):
    """A role as clients write it: name, comment, permissions and source rules count; the rest is ignored."""

    name: Annotated[StrictStr, Field(min_length=1, max_length=NAME_MAX)]
    comment: Annotated[StrictStr, NullableStr, Field(max_length=TEXT_MAX)] = ""
    permissions: Annotated[list[StrictStr], NullableList, Field(max_length=100)] = []
    source_rules: SourceRuleIn | None = None

    def stored_rules(self) -> dict[str, Any] | None:
        return None if self.source_rules is None else self.source_rules.stored()


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
    source_rules: dict[str, Any]
    # Fields PrivX clients read or echo back; grantflow has no access groups or principal keys.
    tags: list[str] = []
    access_group_id: str = ""
    permit_agent: bool = False
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
