from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, Text
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


class SigningKey(Base):
    """An Ed25519 token-signing key; the newest unretired one signs, every unexpired one verifies."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    private_key_sealed: Mapped[str] = mapped_column(Text)
    public_key_pem: Mapped[str] = mapped_column(Text)
    created: Mapped[datetime] = mapped_column(default=utc_now)
    retired: Mapped[datetime | None] = mapped_column(default=None)
