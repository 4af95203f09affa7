"""GET /metrics: Prometheus text for an admin token or the static GRANTFLOW_METRICS_TOKEN."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.security import SecurityScopes
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from grantflow.auth.deps import authenticate, bearer
from grantflow.auth.scopes import Scope
from grantflow.db import ReadSessionDep
from grantflow.notification import outbox
from grantflow.notification.models import OutboxStatus
from grantflow.runtime import RuntimeDep

router = APIRouter()


async def _scraper(runtime: RuntimeDep, token: Annotated[str | None, Depends(bearer)]) -> None:
    """An admin token, or the static GRANTFLOW_METRICS_TOKEN that a Prometheus scrape config can carry."""
    expected = runtime.config.metrics_token
    if expected is not None and token and hmac.compare_digest(token.encode(), expected.get_secret_value().encode()):
        return
    await authenticate(SecurityScopes([Scope.ADMIN]), runtime, token)


@router.get("/metrics", dependencies=[Depends(_scraper)], response_class=Response, include_in_schema=False)
async def metrics(runtime: RuntimeDep, session: ReadSessionDep) -> Response:
    counts = await outbox.status_counts(session)
    instruments = runtime.metrics
    for status in OutboxStatus:
        instruments.outbox_messages.labels(status=status.value).set(counts.get(status, 0))
    instruments.mail_queue_depth.set(counts.get(OutboxStatus.PENDING, 0) + counts.get(OutboxStatus.SENDING, 0))
    return Response(generate_latest(instruments.registry), media_type=CONTENT_TYPE_LATEST)
