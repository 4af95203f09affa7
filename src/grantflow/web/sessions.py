"""Web sign-in sessions: open at sign-in, checked on every page, ended at sign-out or when they lapse.

A session ends when it has been idle `web_session_idle_minutes`, when it is `web_session_hours` old, when the
user is deleted (the row goes with them) and when the user's password changes (the stored mark no longer fits).
The caller's scopes are computed from the roles held at each page, so a lost role counts at once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.auth.principal import Principal
from grantflow.config import Config
from grantflow.role import service as role_service
from grantflow.user.models import User
from grantflow.web.models import WebSession

# A session's last use is written at most this often: a page view is otherwise read-only.
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class Viewer:
    """The signed-in person looking at a page."""

    user: User
    principal: Principal
    csrf_token: str
    token_hash: str


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def password_mark(user: User) -> str:
    return _digest(user.password_hash or "")


async def open_session(session: AsyncSession, user: User, config: Config, now: datetime) -> str:
    """A new session for `user`; returns the cookie value (stored only as its hash)."""
    token = secrets.token_urlsafe(32)
    session.add(
        WebSession(
            token_hash=_digest(token),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(32),
            password_mark=password_mark(user),
            created=now,
            last_seen=now,
            expires=now + timedelta(hours=config.web_session_hours),
        )
    )
    await session.flush()
    return token


async def find(session: AsyncSession, token: str, config: Config, now: datetime) -> tuple[WebSession, User] | None:
    """The live session this cookie names, with its user; None when there is none or it has lapsed."""
    row = (
        await session.execute(
            select(WebSession, User)
            .join(User, User.id == WebSession.user_id)
            .where(WebSession.token_hash == _digest(token))
        )
    ).first()
    if row is None:
        return None
    web_session, user = row
    idle_limit = timedelta(minutes=config.web_session_idle_minutes)
    if now >= web_session.expires or now - web_session.last_seen >= idle_limit:
        return None
    if web_session.password_mark != password_mark(user):
        return None
    return web_session, user


async def viewer_of(session: AsyncSession, web_session: WebSession, user: User, now: datetime) -> Viewer:
    scopes, _ = await role_service.scopes_of(session, user.id, now)
    principal = Principal(user_id=user.id, scopes=frozenset(scopes))
    return Viewer(user=user, principal=principal, csrf_token=web_session.csrf_token, token_hash=web_session.token_hash)


def needs_touch(web_session: WebSession, now: datetime) -> bool:
    return now - web_session.last_seen >= TOUCH_EVERY


async def touch(session: AsyncSession, token_hash: str, now: datetime) -> None:
    row = await session.get(WebSession, token_hash)
    if row is not None:
        row.last_seen = now


async def end(session: AsyncSession, token_hash: str) -> None:
    """Sign-out: the session is gone, whatever the browser keeps."""
    await session.execute(delete(WebSession).where(WebSession.token_hash == token_hash))


async def end_lapsed(session: AsyncSession, config: Config, now: datetime) -> int:
    """Remove sessions that can no longer be used (run by the scheduler)."""
    idle_since = now - timedelta(minutes=config.web_session_idle_minutes)
    result = await session.execute(
        delete(WebSession).where((WebSession.expires <= now) | (WebSession.last_seen <= idle_since))
    )
    return int(getattr(result, "rowcount", 0) or 0)
