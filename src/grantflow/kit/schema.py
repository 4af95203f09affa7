"""Base pydantic models and field types shared by every wire schema."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Generic, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictStr,
    field_validator,
)

# Wire limits, one place. Strings longer than these are refused with VALUE_OUT_OF_BOUNDS.
NAME_MAX = 200
TEXT_MAX = 4000

Name = Annotated[StrictStr, Field(min_length=1, max_length=NAME_MAX)]
Text = Annotated[StrictStr, Field(max_length=TEXT_MAX)]


def has_nul(value: object) -> bool:
    """Whether a value, or anything inside it, is text with a NUL character (PostgreSQL cannot store one)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_nul(v) for v in value)
    return False


def refuse_nul(value: object) -> object:
    if has_nul(value):
        raise ValueError("text must not contain NUL characters")
    return value


class InputModel(BaseModel):
    """Bodies sent by clients: unknown and read-only keys are ignored, types are checked strictly, no text may
    carry a NUL character (refused with the field's name, on both databases alike)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, str_strip_whitespace=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        return refuse_nul(value)


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


# A plain list of names in a body (roles/resolve): the same NUL rule as every model.
NameList = Annotated[list[StrictStr], BeforeValidator(refuse_nul)]


def _storable_time(value: datetime) -> datetime:
    """A time the databases can hold in UTC: 0001-01-01T00:00:00+01:00 has no UTC form (year 0)."""
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time is out of range once converted to UTC") from None
    return value


# Every date-time a client sends: with a time zone, and one that has a UTC form.
Moment = Annotated[AwareDatetime, AfterValidator(_storable_time)]
OptionalMoment = Annotated[Moment | None, EmptyAsNone]
