"""Web UI sign-in sessions, kept on the server: the cookie holds only a random token, stored here as its hash."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from grantflow.db import Base


class WebSession(Base):
    """One browser's sign-in; gone at sign-out, with its user, or when the user's password changes."""

    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    # A digest of the user's password hash at sign-in: a changed or removed password ends the session.
    password_mark: Mapped[str] = mapped_column(String(64))
    created: Mapped[datetime]
    last_seen: Mapped[datetime]
    expires: Mapped[datetime]
