from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Text
from sqlalchemy.orm import Mapped, mapped_column

from grantflow.db import Base
from grantflow.kit.clock import utc_now

SETTINGS_ROW_ID = 1


class EngineSettings(Base):
    """The single row of API-managed settings; the SMTP password is kept sealed, apart from the rest."""

    __tablename__ = "engine_settings"

    id: Mapped[int] = mapped_column(primary_key=True, default=SETTINGS_ROW_ID)
    values: Mapped[dict[str, Any]] = mapped_column(default=dict)
    smtp_password_sealed: Mapped[str | None] = mapped_column(Text, default=None)
    updated: Mapped[datetime] = mapped_column(default=utc_now)
