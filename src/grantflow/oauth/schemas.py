"""Token endpoint shapes, in RFC 6749 field names."""

from __future__ import annotations

from pydantic import BaseModel


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
    error: str
    error_description: str
