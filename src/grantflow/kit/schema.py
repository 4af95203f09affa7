"""Base pydantic models and field types shared by every wire schema."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictStr

# Wire limits, one place. Strings longer than these are refused with VALUE_OUT_OF_BOUNDS.
NAME_MAX = 200
TEXT_MAX = 4000

Name = Annotated[StrictStr, Field(min_length=1, max_length=NAME_MAX)]
Text = Annotated[StrictStr, Field(max_length=TEXT_MAX)]


class InputModel(BaseModel):
    """Bodies sent by clients: unknown and read-only keys are ignored, types are checked strictly."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, str_strip_whitespace=False)


class OutputModel(BaseModel):
    """Bodies grantflow sends: built from ORM objects or dicts."""

    model_config = ConfigDict(from_attributes=True)


class Identifier(OutputModel):
    id: str


T = TypeVar("T")


class ResultSet(OutputModel, Generic[T]):
    """PrivX list envelope: `count` is the total number of matches, `items` the page."""

    count: int
    items: list[T]


def isoformat(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


def _none_as_empty_list(value: object) -> object:
    return [] if value is None else value


def _none_as_empty_str(value: object) -> object:
    return "" if value is None else value


# Enum values arrive in any case (the PrivX UI sends lower case filters); they leave in upper case.
Upper = BeforeValidator(_upper)
# Go clients send `null` for empty slices and strings.
NullableList = BeforeValidator(_none_as_empty_list)
NullableStr = BeforeValidator(_none_as_empty_str)


def _empty_as_none(value: object) -> object:
    return None if value == "" else value


# Go clients send "" for unset ids and times.
EmptyAsNone = BeforeValidator(_empty_as_none)


# -- PrivX handles: how roles and users are named inside workflows, requests and API clients --------------------


class RoleRef(InputModel):
    """A role named by a client: only `id` counts; `name` and `deleted` are ignored."""

    id: uuid.UUID
    name: Annotated[StrictStr, Field(max_length=NAME_MAX)] | None = None


class RoleHandle(OutputModel):
    id: uuid.UUID
    name: str
    deleted: bool = False


class UserHandle(OutputModel):
    id: uuid.UUID
    display_name: str
    deleted: bool = False
