"""WorkflowSettings (docs/privx-compatibility.md) with grantflow's enums (decisions.md §6)."""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field, StrictBool, StrictInt, StrictStr

from grantflow.kit.email import checked_address
from grantflow.kit.schema import EmptyAsNone, InputModel, NullableStr, OutputModel, Upper


class SmtpProtocol(StrEnum):
    PLAIN = "PLAIN"
    STARTTLS = "STARTTLS"
    TLS = "TLS"


class SmtpAuthMode(StrEnum):
    NONE = "NONE"
    PASSWORD = "PASSWORD"
    OAUTH2 = "OAUTH2"


class SmtpProvider(StrEnum):
    GENERIC = "GENERIC"
    MICROSOFT = "MICROSOFT"
    GOOGLE = "GOOGLE"


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HOST = re.compile(r"^[A-Za-z0-9._:\-\[\]]*$")


def _no_control(value: str) -> str:
    """Values that end up in SMTP commands or mail headers must not carry CR, LF or other controls."""
    if _CONTROL.search(value):
        raise ValueError("control characters (such as CR or LF) are not allowed")
    return value


def _host(value: str) -> str:
    if not _HOST.match(value):
        raise ValueError("not a host name or IP address")
    try:
        ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        labels = value.rstrip(".").split(".") if value else []
        if any(not 1 <= len(label) <= 63 for label in labels):
            raise ValueError("not a host name: every part between dots needs 1 to 63 characters") from None
    return value


def _url(value: str) -> str:
    if value and not re.match(r"^https?://[^\s/$.?#][^\s]*$", value):
        raise ValueError("not an http(s) URL")
    return value


# Everything that can reach an SMTP command or a mail header refuses control characters.
SafeStr = Annotated[StrictStr, NullableStr, AfterValidator(_no_control)]
HostName = Annotated[SafeStr, Field(max_length=253), AfterValidator(_host)]
Address = Annotated[SafeStr, Field(max_length=320), AfterValidator(checked_address)]
Url = Annotated[SafeStr, Field(max_length=2000), AfterValidator(_url)]
Credential = Annotated[SafeStr, Field(max_length=1024)]
Scope = Annotated[SafeStr, Field(max_length=500)]


class SettingsIn(InputModel):
    """Settings as clients send them: every key optional, given keys replace stored ones.

    `""` counts as not given for every string and enum: privx-sdk-go's WorkflowSettings has no `omitempty`, so a
    struct built from scratch sends `""` for each field it did not set (decisions.md §6.1).
    """

    smtp_server_enabled: StrictBool | None = None
    smtp_server: Annotated[HostName | None, EmptyAsNone] = None
    smtp_server_port: Annotated[StrictInt, Field(ge=0, le=65535)] | None = None
    smtp_server_protocol: Annotated[Annotated[SmtpProtocol, Upper] | None, EmptyAsNone] = None
    smtp_server_username: Annotated[Credential | None, EmptyAsNone] = None
    smtp_server_password: Credential | None = None
    smtp_server_insecure_verify: StrictBool | None = None
    smtp_sender_address: Annotated[Address | None, EmptyAsNone] = None
    smtp_retry_attempts: Annotated[StrictInt, Field(ge=0, le=20)] | None = None
    privx_backend_address: Annotated[Url | None, EmptyAsNone] = None
    request_role_max_approvers: Annotated[StrictInt, Field(ge=0, le=1000)] | None = None
    # extension (decisions.md §4): a WAITING request older than this becomes EXPIRED.
    request_expiry_hours: Annotated[StrictInt, Field(ge=1, le=8760)] | None = None
    # extension: approvers are reminded once a step has waited this long; 0 = no reminders.
    reminder_hours: Annotated[StrictInt, Field(ge=0, le=8760)] | None = None
    # extension: the target user is told this long before a grant ends; 0 = not at all.
    expiry_notice_hours: Annotated[StrictInt, Field(ge=0, le=8760)] | None = None
    smtp_provider: Annotated[Annotated[SmtpProvider, Upper] | None, EmptyAsNone] = None
    smtp_authentication_mode: Annotated[Annotated[SmtpAuthMode, Upper] | None, EmptyAsNone] = None
    smtp_provider_token_endpoint: Annotated[Url | None, EmptyAsNone] = None
    smtp_provider_token_scope: Annotated[Scope | None, EmptyAsNone] = None
    # testsmtp only (extension): who receives the test message; default the caller's e-mail.
    test_recipient: Annotated[Address | None, EmptyAsNone] = None


class SettingsOut(OutputModel):
    """Every known key; the password is never returned (always "")."""

    smtp_server_enabled: bool = False
    smtp_server: str = ""
    smtp_server_port: int = 0
    smtp_server_protocol: SmtpProtocol = SmtpProtocol.STARTTLS
    smtp_server_username: str = ""
    smtp_server_password: str = ""
    smtp_server_insecure_verify: bool = False
    smtp_sender_address: str = ""
    smtp_retry_attempts: int = 5
    privx_backend_address: str = ""
    request_role_max_approvers: int = 0
    request_expiry_hours: int = 168
    reminder_hours: int = 24
    expiry_notice_hours: int = 24
    smtp_provider: SmtpProvider = SmtpProvider.GENERIC
    smtp_authentication_mode: SmtpAuthMode = SmtpAuthMode.NONE
    smtp_provider_token_endpoint: str = ""
    smtp_provider_token_scope: str = ""


class SmtpTestOut(OutputModel):
    status: str
    details: dict[str, str]
