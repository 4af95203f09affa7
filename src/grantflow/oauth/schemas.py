"""Token endpoint shapes, in RFC 6749 field names."""

from __future__ import annotations

from pydantic import BaseModel, RootModel

from grantflow.errors import ErrorBody, ErrorCode


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    scope: str
    refresh_token: str | None = None


class LoginIn(BaseModel):
    username: str
    password: str
    token: str


class LoginOut(BaseModel):
    code: str
    state: str


class OAuthErrorBody(BaseModel):
    """RFC 6749 §5.2, plus the PrivX error fields that privx-sdk-go reads from every failed call."""

    error: str
    error_description: str
    error_code: ErrorCode
    error_message: str


class LoginErrorBody(RootModel[OAuthErrorBody | ErrorBody]):
    """authorize and login: a refused login is an OAuth error; a malformed body or query, the PrivX error object."""
