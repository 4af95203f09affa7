"""The OAuth server's tables: clients, refresh tokens, authorization-code flows, login attempt counters."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from grantflow.db import Base
from grantflow.kit.clock import utc_now


class OAuthClient(Base):
    """An OAuth client ("domain" in PrivX), e.g. `privx-external`, authenticated with HTTP Basic."""

    __tablename__ = "oauth_clients"

    client_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    secret_hash: Mapped[str | None] = mapped_column(String(200), default=None)
    # PrivX shows this secret with every API client (the SDKs send it in their Basic header), so it is kept sealed.
    secret_sealed: Mapped[str | None] = mapped_column(Text, default=None)
    grant_types: Mapped[list[Any]] = mapped_column(default=list)
    created: Mapped[datetime] = mapped_column(default=utc_now)


class RefreshToken(Base):
    """One refresh token of a login session; using it replaces it. Reusing a replaced one ends the session."""

    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[uuid.UUID] = mapped_column(index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    client_id: Mapped[str] = mapped_column(String(100))
    expires: Mapped[datetime] = mapped_column(index=True)
    used: Mapped[datetime | None] = mapped_column(default=None)
    revoked: Mapped[datetime | None] = mapped_column(default=None)
    created: Mapped[datetime] = mapped_column(default=utc_now)


class AuthorizationFlow(Base):
    """One authorization-code login: opened by /oauth/authorize, given a user by /login, spent by /oauth/token."""

    __tablename__ = "authorization_flows"

    login_token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    code_hash: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    client_id: Mapped[str] = mapped_column(String(100))
    redirect_uri: Mapped[str] = mapped_column(String(2000))
    state: Mapped[str] = mapped_column(String(500))
    code_challenge: Mapped[str] = mapped_column(String(128))
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), default=None)
    expires: Mapped[datetime] = mapped_column(index=True)
    spent: Mapped[datetime | None] = mapped_column(default=None)


class LoginAttempts(Base):
    """Login attempts counted in the current throttling window, per account or per source address (the key)."""

    __tablename__ = "login_attempts"

    key: Mapped[str] = mapped_column(String(320), primary_key=True)
    # Failures plus the attempts in flight: what the limit bounds.
    count: Mapped[int]
    # Attempts admitted and not settled yet (their password is being checked).
    in_flight: Mapped[int] = mapped_column(default=0, server_default="0")
    window_start: Mapped[datetime] = mapped_column(index=True)
