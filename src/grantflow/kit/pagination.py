"""offset/limit/sortkey/sortdir: parsed and bounded the same way by every list and search endpoint."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Query
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from grantflow.errors import ErrorCode, InvalidRequestData

DEFAULT_LIMIT = 50

M = TypeVar("M")
MAX_LIMIT = 100


@dataclass(frozen=True)
class Page:
    offset: int
    limit: int
    sortkey: str
    descending: bool


def page_params(
    sortkeys: Mapping[str, Any], default_key: str, default_desc: bool, max_limit: int = MAX_LIMIT
) -> Callable[..., Page]:
    """A dependency that reads the paging query; a limit above the maximum is clamped (decisions.md §4)."""

    def dependency(
        offset: Annotated[int, Query(description="where to start")] = 0,
        limit: Annotated[int, Query(description=f"how many items, at most {max_limit}")] = DEFAULT_LIMIT,
        sortkey: Annotated[str | None, Query(description=f"one of: {', '.join(sortkeys)}")] = None,
        sortdir: Annotated[str | None, Query(description="ASC or DESC")] = None,
    ) -> Page:
        if offset < 0:
            raise InvalidRequestData(
                "offset must not be negative", property="offset", error_code=ErrorCode.VALUE_OUT_OF_BOUNDS
            )
        if limit < 1:
            raise InvalidRequestData(
                "limit must be at least 1", property="limit", error_code=ErrorCode.VALUE_OUT_OF_BOUNDS
            )
        key = (sortkey or default_key).lower()
        if key not in sortkeys:
            raise InvalidRequestData(
                f"sortkey must be one of: {', '.join(sortkeys)}",
                property="sortkey",
                error_code=ErrorCode.VALUE_INCORRECT_FORMAT,
            )
        direction = (sortdir or ("DESC" if default_desc else "ASC")).upper()
        if direction not in ("ASC", "DESC"):
            raise InvalidRequestData(
                "sortdir must be ASC or DESC", property="sortdir", error_code=ErrorCode.VALUE_INCORRECT_FORMAT
            )
        return Page(offset=offset, limit=min(limit, max_limit), sortkey=key, descending=direction == "DESC")

    return dependency


async def paginate(
    session: AsyncSession,
    query: Select[M],
    page: Page,
    sortkeys: Mapping[str, InstrumentedAttribute[Any]],
    tiebreak: InstrumentedAttribute[Any],
) -> tuple[int, list[M]]:
    """Total count of the query and the requested page of it, in a stable order."""
    count = await session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    column = sortkeys[page.sortkey]
    order = [column.desc(), tiebreak.desc()] if page.descending else [column.asc(), tiebreak.asc()]
    rows = await session.scalars(query.order_by(*order).offset(page.offset).limit(page.limit))
    return int(count or 0), list(rows)
