"""One error type, rendered everywhere as the PrivX error object (decisions.md §8)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("grantflow.errors")


class ErrorCode(StrEnum):
    GENERAL_ERROR = "GENERAL_ERROR"
    BAD_REQUEST = "BAD_REQUEST"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    INVALID_REQUEST_DATA = "INVALID_REQUEST_DATA"
    REQUIRED_VALUE_MISSING = "REQUIRED_VALUE_MISSING"
    VALUE_OUT_OF_BOUNDS = "VALUE_OUT_OF_BOUNDS"
    VALUE_INCORRECT_TYPE = "VALUE_INCORRECT_TYPE"
    VALUE_INCORRECT_FORMAT = "VALUE_INCORRECT_FORMAT"
    VALUE_DUPLICATE = "VALUE_DUPLICATE"
    CONFIGURATION_ERROR = "CONFIGURATION_ERROR"
    OUT_OF_RESOURCES = "OUT_OF_RESOURCES"
    MAX_LOAD = "MAX_LOAD"
    TOO_MANY_CONNECTIONS = "TOO_MANY_CONNECTIONS"
    DATABASE_ERROR = "DATABASE_ERROR"
    CACHE_ERROR = "CACHE_ERROR"
    INTRA_SERVICE_COMMUNICATION_ERROR = "INTRA_SERVICE_COMMUNICATION_ERROR"
    MATCHING_WORKFLOW_NOT_FOUND = "MATCHING_WORKFLOW_NOT_FOUND"
    MULTIPLE_MATCHING_WORKFLOWS = "MULTIPLE_MATCHING_WORKFLOWS"


class ErrorDetail(BaseModel):
    error_code: str
    error_message: str | None = None
    property: str | None = None


class ErrorBody(BaseModel):
    """The PrivX error object (docs/privx-compatibility.md)."""

    error_code: str
    error_message: str | None = None
    property: str | None = None
    details: list[ErrorDetail] | None = None


class GrantflowError(Exception):
    """An expected failure: carries the HTTP status and the PrivX error fields."""

    status_code = 400
    error_code = ErrorCode.BAD_REQUEST

    def __init__(
        self,
        message: str,
        *,
        property: str | None = None,
        error_code: ErrorCode | None = None,
        details: Sequence[ErrorDetail] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.property = property
        if error_code is not None:
            self.error_code = error_code
        self.details = list(details)
        self.headers = headers

    def body(self) -> ErrorBody:
        return ErrorBody(
            error_code=self.error_code,
            error_message=self.message,
            property=self.property,
            details=self.details or None,
        )


class InvalidRequestData(GrantflowError):
    error_code = ErrorCode.INVALID_REQUEST_DATA


class Unauthorized(GrantflowError):
    status_code = 401
    error_code = ErrorCode.PERMISSION_DENIED

    def __init__(self, message: str = "missing or invalid access token") -> None:
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer realm="grantflow"'})


class PermissionDenied(GrantflowError):
    status_code = 403
    error_code = ErrorCode.PERMISSION_DENIED


class NotFound(GrantflowError):
    """PrivX has no dedicated code for 404; the id that names nothing is invalid request data."""

    status_code = 404
    error_code = ErrorCode.INVALID_REQUEST_DATA


class Duplicate(GrantflowError):
    status_code = 409
    error_code = ErrorCode.VALUE_DUPLICATE


class Conflict(GrantflowError):
    """Another writer changed the object first; the client may retry."""

    status_code = 409
    error_code = ErrorCode.BAD_REQUEST


class DatabaseUnavailable(GrantflowError):
    """The database cannot serve right now (down, unreachable, out of connections): 503, try again shortly."""

    status_code = 503
    error_code = ErrorCode.DATABASE_ERROR
    retry_after = 5

    def __init__(
        self,
        message: str = "the database is unavailable; try again",
        error_code: ErrorCode | None = None,
        property: str | None = None,
    ) -> None:
        headers = {"Retry-After": str(self.retry_after)}
        super().__init__(message, error_code=error_code, property=property, headers=headers)


# PostgreSQL SQLSTATE classes that mean "not now" rather than "wrong": connection exceptions, insufficient
# resources, operator intervention (shutting down, starting up).
_UNAVAILABLE_STATES = ("08", "53", "57P")
_TOO_MANY_CONNECTIONS_STATE = "53300"


def as_unavailable(exc: BaseException) -> DatabaseUnavailable | None:
    """The 503 for a failure that means the database cannot serve right now, or None for any other failure."""
    if isinstance(exc, DatabaseUnavailable):
        return exc
    if isinstance(exc, PoolTimeout):
        return DatabaseUnavailable("no database connection is free; try again", ErrorCode.TOO_MANY_CONNECTIONS)
    if isinstance(exc, OSError):  # refused, reset or unreachable before the driver could say more
        return DatabaseUnavailable()
    if not isinstance(exc, DBAPIError) or isinstance(exc, IntegrityError):
        return None
    state = str(getattr(exc.orig, "sqlstate", "") or "")
    if state == _TOO_MANY_CONNECTIONS_STATE:
        return DatabaseUnavailable("the database has no connection to spare; try again", ErrorCode.TOO_MANY_CONNECTIONS)
    if isinstance(exc, OperationalError) or exc.connection_invalidated or state.startswith(_UNAVAILABLE_STATES):
        return DatabaseUnavailable()
    return None


# Every documented error response, for OpenAPI (`responses=` on each router).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in (
        (400, "Bad request: the PrivX error object names the offending `property`"),
        (401, "Missing, expired or invalid access token"),
        (403, "Authenticated, but the token's scopes or the object's rules do not allow this"),
        (404, "Unknown id, or an object the caller may not see"),
        (409, "A name already taken (VALUE_DUPLICATE), or a concurrent change: retry"),
        (413, "Request body larger than the configured limit"),
        (500, "Internal error (no internals are disclosed)"),
        (503, "The database is unavailable or out of connections (Retry-After says when to try again)"),
    )
}


def error_response(status: int, body: ErrorBody, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content=body.model_dump(exclude_none=True), headers=headers)


# pydantic error type → PrivX error code.
# Where pydantic's own words would puzzle a person.
_MESSAGES = {"extra_forbidden": "this field is not supported here; nothing was done"}

_VALIDATION_CODES: dict[str, ErrorCode] = {
    "missing": ErrorCode.REQUIRED_VALUE_MISSING,
    "extra_forbidden": ErrorCode.INVALID_REQUEST_DATA,
    "json_invalid": ErrorCode.BAD_REQUEST,
    "json_type": ErrorCode.BAD_REQUEST,
    "string_too_long": ErrorCode.VALUE_OUT_OF_BOUNDS,
    "string_too_short": ErrorCode.VALUE_OUT_OF_BOUNDS,
    "too_long": ErrorCode.VALUE_OUT_OF_BOUNDS,
    "too_short": ErrorCode.VALUE_OUT_OF_BOUNDS,
    "greater_than": ErrorCode.VALUE_OUT_OF_BOUNDS,
    "greater_than_equal": ErrorCode.VALUE_OUT_OF_BOUNDS,
    "less_than": ErrorCode.VALUE_OUT_OF_BOUNDS,
    "less_than_equal": ErrorCode.VALUE_OUT_OF_BOUNDS,
    "enum": ErrorCode.VALUE_INCORRECT_FORMAT,
    "literal_error": ErrorCode.VALUE_INCORRECT_FORMAT,
    "uuid_parsing": ErrorCode.VALUE_INCORRECT_FORMAT,
    "uuid_type": ErrorCode.VALUE_INCORRECT_TYPE,
    "datetime_parsing": ErrorCode.VALUE_INCORRECT_FORMAT,
    "datetime_from_date_parsing": ErrorCode.VALUE_INCORRECT_FORMAT,
    "timezone_aware": ErrorCode.VALUE_INCORRECT_FORMAT,
    "string_pattern_mismatch": ErrorCode.VALUE_INCORRECT_FORMAT,
    "value_error": ErrorCode.INVALID_REQUEST_DATA,
}


def _property_of(loc: Sequence[str | int]) -> str:
    """The JSON path of the bad value; `body` when the whole body is wrong (an array where an object belongs).

    pydantic puts a tagged union's tag in the path (`connection.LDAP.address`); field names here are lower case,
    so upper-case parts are tags and are left out.
    """
    parts = [str(p) for p in loc if not (isinstance(p, str) and p.isupper())]
    if len(parts) > 1 and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts)


def _message_of(err: Any) -> str:
    """pydantic's message as a person reads it: no "Value error, " prefix, malformed JSON located."""
    if err["type"] == "json_invalid":
        where = err.get("loc", ())
        at = f" at character {where[-1]}" if where and isinstance(where[-1], int) else ""
        return f"the body is not valid JSON{at}: {err.get('ctx', {}).get('error', 'malformed')}"
    message = _MESSAGES.get(err["type"]) or str(err.get("msg", "invalid value"))
    return message.removeprefix("Value error, ")


def validation_error_body(errors: Sequence[Any]) -> ErrorBody:
    """The first problem becomes the top-level error; every problem is listed in `details`."""
    details = [
        ErrorDetail(
            error_code=_VALIDATION_CODES.get(err["type"], ErrorCode.VALUE_INCORRECT_TYPE),
            error_message=_message_of(err),
            property="body" if err["type"] == "json_invalid" else _property_of(err.get("loc", ())) or None,
        )
        for err in errors
    ]
    first = details[0] if details else ErrorDetail(error_code=ErrorCode.BAD_REQUEST)
    return ErrorBody(
        error_code=first.error_code,
        error_message=first.error_message,
        property=first.property,
        details=details,
    )


async def _on_grantflow_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GrantflowError)
    return error_response(exc.status_code, exc.body(), exc.headers)


async def _on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(400, validation_error_body(exc.errors()))


_HTTP_CODES = {
    404: ErrorCode.INVALID_REQUEST_DATA,
    405: ErrorCode.BAD_REQUEST,
    413: ErrorCode.OUT_OF_RESOURCES,
}


async def _on_http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, ErrorCode.BAD_REQUEST)
    return error_response(exc.status_code, ErrorBody(error_code=code, error_message=str(exc.detail)), exc.headers)


async def _on_stale_data(_request: Request, _exc: Exception) -> JSONResponse:
    return error_response(409, Conflict("the object was changed by another request; retry").body())


async def _on_database_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, IntegrityError):
        # Uniqueness is checked before writing; reaching the constraint means a concurrent writer won the race.
        return error_response(409, Duplicate("a concurrent change conflicts with this one; retry").body())
    unavailable = as_unavailable(exc)
    if unavailable is None:
        return await _on_unexpected(request, exc)
    cause = type(getattr(exc, "orig", None) or exc).__name__
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, cause)
    return error_response(503, unavailable.body(), unavailable.headers)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, ErrorBody(error_code=ErrorCode.GENERAL_ERROR, error_message="internal error"))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(GrantflowError, _on_grantflow_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(StaleDataError, _on_stale_data)
    for failure in (DBAPIError, PoolTimeout, OSError):
        app.add_exception_handler(failure, _on_database_error)
    app.add_exception_handler(Exception, _on_unexpected)
