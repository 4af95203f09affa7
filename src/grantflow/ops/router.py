"""Operations endpoints: GET /status (public, as PrivX's status endpoints are) and GET /metrics (Prometheus text
for an admin token or the static GRANTFLOW_METRICS_TOKEN)."""

from __future__ import annotations

import hmac
from datetime import datetime

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

from grantflow import __version__
from grantflow.auth.scopes import Scope
from grantflow.db import ReadSessionDep
from grantflow.errors import DatabaseUnavailable, as_unavailable
from grantflow.http.deps import authenticate, bearer_token
from grantflow.kit.prepared import Prepared
from grantflow.kit.schema import OutputModel
from grantflow.notification import outbox
from grantflow.notification.models import OutboxStatus
from grantflow.runtime import RuntimeDep

status_router = APIRouter(tags=["status"])
metrics_router = APIRouter()
_ANSWER = Prepared(select(literal(1)))


class StatusDetail(OutputModel):
    k: str
    v: str


class ServiceStatus(OutputModel):
    version: str
    api_version: str
    status: str
    status_message: str
    app_id: str
    start_time: datetime
    status_details: list[StatusDetail]
    issues: list[dict[str, str]]


@status_router.get("/status", response_model=ServiceStatus, summary="Service status (no token needed)")
async def service_status(runtime: RuntimeDep) -> ServiceStatus:
    # What monitors and load balancers poll: one pooled connection asked for one value, no session around it.
    try:
        async with runtime.engine.connect() as connection:
            await _ANSWER.rows(await _outside_a_transaction(connection))
    except Exception as exc:
        unavailable = as_unavailable(exc) or DatabaseUnavailable()
        raise DatabaseUnavailable(
            "the database is unavailable: grantflow cannot serve requests until it answers",
            unavailable.error_code,
            property="database",
        ) from exc
    return ServiceStatus(
        version=f"{__version__} (grantflow)",
        api_version="v1",
        status="RUNNING",
        status_message="OK",
        app_id=runtime.app_id,
        start_time=runtime.started,
        status_details=[StatusDetail(k="database", v=runtime.engine.dialect.name)],
        issues=[],
    )


async def _outside_a_transaction(connection: AsyncConnection) -> AsyncConnection:
    """On PostgreSQL, asyncpg's adapter would wrap the SELECT in a transaction: BEGIN, SELECT and ROLLBACK are three
    round trips for one answer. SQLite's connections already run a lone statement in autocommit."""
    if connection.dialect.name != "postgresql":
        return connection
    return await connection.execution_options(isolation_level="AUTOCOMMIT")


async def _scraper(request: Request, runtime: RuntimeDep) -> None:
    """An admin token, or the static GRANTFLOW_METRICS_TOKEN that a Prometheus scrape config can carry."""
    token, expected = bearer_token(request), runtime.config.metrics_token
    if expected is not None and token and hmac.compare_digest(token.encode(), expected.get_secret_value().encode()):
        return
    await authenticate(runtime, token, [Scope.ADMIN])


@metrics_router.get("/metrics", dependencies=[Depends(_scraper)], response_class=Response, include_in_schema=False)
async def metrics(runtime: RuntimeDep, session: ReadSessionDep) -> Response:
    counts = await outbox.status_counts(session)
    instruments = runtime.metrics
    for status in OutboxStatus:
        instruments.outbox_messages.labels(status=status.value).set(counts.get(status, 0))
    instruments.mail_queue_depth.set(counts.get(OutboxStatus.PENDING, 0) + counts.get(OutboxStatus.SENDING, 0))
    return Response(generate_latest(instruments.registry), media_type=CONTENT_TYPE_LATEST)
