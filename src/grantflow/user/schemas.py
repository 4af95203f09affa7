"""Local users and API clients as the PrivX local-user-store shows them (docs/privx-compatibility.md)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StrictBool, StrictStr

from grantflow.kit.email import checked_address
from grantflow.kit.schema import (
    NAME_MAX,
    TEXT_MAX,
    InputModel,
    NullableList,
    NullableStr,
    OutputModel,
    RoleHandle,
    RoleRef,
)

Short = Annotated[StrictStr, NullableStr, Field(max_length=NAME_MAX)]
PASSWORD_MIN = 8
PASSWORD_MAX = 1024
Password = Annotated[StrictStr, Field(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)]

# Optional profile fields kept as given and echoed back.
PROFILE_FIELDS = (
    "full_name",
    "first_name",
    "last_name",
    "comment",
    "job_title",
    "company",
    "department",
    "telephone",
    "locale",
    "windows_account",
    "unix_account",
)


class PasswordIn(InputModel):
    password: Password | None = None


class LocalUserIn(InputModel):
    username: Annotated[StrictStr, Field(min_length=1, max_length=NAME_MAX)]
    display_name: Short = ""
    email: Annotated[StrictStr, NullableStr, Field(max_length=320), AfterValidator(checked_address)] = ""
    full_name: Short = ""
    first_name: Short = ""
    last_name: Short = ""
    comment: Annotated[StrictStr, NullableStr, Field(max_length=TEXT_MAX)] = ""
    job_title: Short = ""
    company: Short = ""
    department: Short = ""
    telephone: Short = ""
    locale: Short = ""
    windows_account: Short = ""
    unix_account: Short = ""
    tags: Annotated[list[Short], NullableList, Field(max_length=100)] = []
    password: PasswordIn | None = None
    password_change_required: StrictBool = False


class PasswordInfo(OutputModel):
    created: datetime | None = None


class LocalUserOut(OutputModel):
    id: uuid.UUID
    username: str
    display_name: str
    email: str
    full_name: str = ""
    first_name: str = ""
    last_name: str = ""
    comment: str = ""
    job_title: str = ""
    company: str = ""
    department: str = ""
    telephone: str = ""
    locale: str = ""
    windows_account: str = ""
    unix_account: str = ""
    tags: list[str] = []
    password: PasswordInfo = PasswordInfo()
    password_change_required: bool = False
    attributes: list[dict[str, Any]] = []
    author: uuid.UUID | None = None
    updated_by: uuid.UUID | None = None
    created: datetime
    updated: datetime


class NewPasswordIn(InputModel):
    password: Password


class ApiClientIn(InputModel):
    """Only `name` and `roles` are written; an echoed secret or OAuth pair is ignored."""

    name: Annotated[StrictStr, Field(min_length=1, max_length=NAME_MAX)]
    roles: Annotated[list[RoleRef], NullableList, Field(max_length=100)] = []


class ApiClientOut(OutputModel):
    id: uuid.UUID
    name: str
    secret: str
    roles: list[RoleHandle]
    oauth_client_id: str
    oauth_client_secret: str
    author: uuid.UUID | None = None
    updated_by: uuid.UUID | None = None
    created: datetime
    updated: datetime
