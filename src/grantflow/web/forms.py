"""Turning HTML forms into the API's own input models, and their errors back into messages beside each field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from grantflow.errors import GrantflowError, validation_error_body

M = TypeVar("M", bound=BaseModel)
FieldErrors = dict[str, str]


def parse(model: type[M], data: dict[str, Any]) -> tuple[M | None, FieldErrors]:
    """The model, or the messages per property exactly as the API would name them."""
    try:
        return model.model_validate(data), {}
    except ValidationError as invalid:
        body = validation_error_body(invalid.errors())
        return None, {d.property or "": d.error_message or "invalid value" for d in body.details or []}


def errors_of(error: GrantflowError) -> FieldErrors:
    """A service's refusal as a message for its field ("" when it concerns the whole form)."""
    found = {d.property or "": d.error_message or error.message for d in error.details if d.property}
    found[error.property or ""] = error.message
    return found


def local_time(value: str, offset_minutes: str) -> str | None:
    """A `datetime-local` value in the zone the browser reported (JavaScript's getTimezoneOffset), else UTC."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
        offset = -int(offset_minutes) if offset_minutes else 0
    except ValueError:
        return value  # the model refuses it with the API's message
    zone = timezone(timedelta(minutes=offset)) if -1440 < offset < 1440 else UTC
    return moment.replace(tzinfo=zone).isoformat()


def whole_number(value: str) -> int | str | None:
    """A number field: an int when it is one; otherwise the text, for the model to refuse with its message."""
    if value == "":
        return None
    try:
        return int(value)
    except ValueError:
        return value
