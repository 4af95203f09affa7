"""The token-signing keys: the one table caller identity needs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from grantflow.db import Base
from grantflow.kit.clock import utc_now


class SigningKey(Base):
    """An Ed25519 token-signing key; the newest unretired one signs, every unexpired one verifies."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    private_key_sealed: Mapped[str] = mapped_column(Text)
    public_key_pem: Mapped[str] = mapped_column(Text)
    created: Mapped[datetime] = mapped_column(default=utc_now)
    retired: Mapped[datetime | None] = mapped_column(default=None)
