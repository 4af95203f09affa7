"""Token endpoint shapes, in RFC 6749 field names."""

from __future__ import annotations

from pydantic import BaseModel, Field, RootModel

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


class TokenExchangeIn(BaseModel):
    """PrivX's token exchange body; `scope` is accepted and ignored (scopes come from the user's roles)."""

    token: str = Field(min_length=1, max_length=16384)
    client_id: str = Field(default="privx-external", max_length=100)
    scope: str = Field(default="", max_length=2000)


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
