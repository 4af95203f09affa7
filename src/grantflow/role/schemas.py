"""Role and user handles as PrivX embeds them in workflows and requests."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import Field, StrictStr

from grantflow.kit.schema import NAME_MAX, InputModel, OutputModel


class RoleRef(InputModel):
    """A role named by a client: only `id` counts; `name` and `deleted` are ignored."""

    id: uuid.UUID
    name: Annotated[StrictStr, Field(max_length=NAME_MAX)] | None = None


class UserRef(InputModel):
    id: uuid.UUID


class RoleHandle(OutputModel):
    id: uuid.UUID
    name: str
    deleted: bool = False


class UserHandle(OutputModel):
    id: uuid.UUID
    display_name: str
    deleted: bool = False


def stored_ref(role_id: uuid.UUID, name: str) -> dict[str, Any]:
    """How a role reference is kept inside a JSON snapshot."""
    return {"id": str(role_id), "name": name}
