"""offset/limit/sortkey/sortdir: parsed and bounded the same way by every list and search endpoint."""

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Query
from sqlalchemy import Select, String, func, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from grantflow.errors import ErrorCode, InvalidRequestData
from grantflow.kit.sqlite import IN_THREAD

# Statements that may read every match of a list: run off the event loop on SQLite.
OFF_LOOP = {IN_THREAD: True}

DEFAULT_LIMIT = 50

M = TypeVar("M")
MAX_LIMIT = 100


@dataclass(frozen=True)
class Page:
    offset: int
    limit: int
    sortkey: str
    descending: bool
    fuzzy_count: bool = False  # `fuzzycount=true`: the count may stop FUZZY_COUNT_BEYOND past the page


# With fuzzycount=true, counting stops this many matches past the end of the page: the count is the exact one or
# offset + limit + FUZZY_COUNT_BEYOND, whichever is smaller (then a lower bound: a pager still knows there is more).
FUZZY_COUNT_BEYOND = 1000


# Far past any real list, and well inside the 64-bit OFFSET both databases take.
MAX_OFFSET = 1_000_000_000


def page_params(
    sortkeys: Mapping[str, Any], default_key: str, default_desc: bool, max_limit: int = MAX_LIMIT
) -> Callable[..., Awaitable[Page]]:
    """A dependency that reads the paging query; a limit above the maximum is clamped (decisions.md §4)."""

    async def dependency(  # async: FastAPI would run a plain function in a worker thread
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="where to start")] = 0,
        limit: Annotated[
            int, Query(ge=1, description=f"how many items; more than {max_limit} is clamped")
        ] = DEFAULT_LIMIT,
        sortkey: Annotated[str | None, Query(description=f"one of: {', '.join(sortkeys)}")] = None,
        sortdir: Annotated[str | None, Query(description="ASC or DESC")] = None,
        fuzzycount: Annotated[
            bool,
            Query(description=f"true: count exactly only up to {FUZZY_COUNT_BEYOND} matches past the page"),
        ] = False,
    ) -> Page:
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
        return Page(
            offset=offset,
            limit=min(limit, max_limit),
            sortkey=key,
            descending=direction == "DESC",
            fuzzy_count=fuzzycount,
        )

    return dependency


async def paginate(
    session: AsyncSession,
    query: Select[M],
    page: Page,
    sortkeys: Mapping[str, InstrumentedAttribute[Any]],
    tiebreak: InstrumentedAttribute[Any],
) -> tuple[int, list[M]]:
    """Total count of the query and the requested page of it, in a stable order.

    The page is chosen on the sort key and id alone, then only its rows are read whole: sorting thousands of
    matches costs little when their wide columns (JSON, search text) are not dragged through the sort. Counting
    and choosing may read every match, so on SQLite they run off the event loop (kit/sqlite.py).
    """
    count = await _count(session, query, page)
    entity = query.column_descriptions[0]["entity"]
    chosen = _chosen(query, page, sortkeys, tiebreak)
    page_rows = select(entity).where(tiebreak.in_(chosen)).order_by(*_order(page, sortkeys, tiebreak))
    rows = await session.scalars(page_rows.execution_options(**OFF_LOOP))
    return count, list(rows)


async def page_keys(
    session: AsyncSession,
    query: Select[Any],
    page: Page,
    sortkeys: Mapping[str, InstrumentedAttribute[Any]],
    tiebreak: InstrumentedAttribute[Any],
) -> tuple[int, list[Any]]:
    """`paginate`'s count and page as the keys (`tiebreak`) of the page's rows, in order, for the caller to read."""
    count = await _count(session, query, page)
    keys = await session.scalars(_chosen(query, page, sortkeys, tiebreak).execution_options(**OFF_LOOP))
    return count, list(keys)


async def page_keys_few(
    session: AsyncSession,
    query: Select[Any],
    page: Page,
    sortkeys: Mapping[str, InstrumentedAttribute[Any]],
    tiebreak: InstrumentedAttribute[Any],
    at_most: int,
) -> tuple[int, list[Any]]:
    """`page_keys`, reading the matches once when there are no more than `at_most` of them.

    page_keys finds the matches twice (to count them, then to choose the page); when that lookup is what costs
    (a keyword search through an index), the keys of a few matches are read once and counted and ordered here.
    With more matches than that, it is page_keys after all.
    """
    column = sortkeys[page.sortkey]
    # As the driver gives them (SQLite's stored text sorts as its values do): converting thousands of keys to
    # UUIDs and datetimes cost more than the second query it saves.
    stored = query.with_only_columns(type_coerce(tiebreak, String), type_coerce(column, String))
    keys = stored.order_by(None).limit(at_most + 1).execution_options(**OFF_LOOP)
    found = [tuple(row) for row in await session.execute(keys)]
    if len(found) > at_most:
        return await page_keys(session, query, page, sortkeys, tiebreak)
    found.sort(key=lambda key: (key[1], key[0]), reverse=page.descending)  # the order page_keys asks SQL for
    python_type = tiebreak.type.python_type
    chosen = found[page.offset : page.offset + page.limit]
    count = min(len(found), counting_limit(page)) if page.fuzzy_count else len(found)  # as _count would say
    return count, [k if isinstance(k, python_type) else python_type(k) for k, _ in chosen]


async def page_keys_windowed(
    session: AsyncSession,
    query: Select[Any],
    page: Page,
    sortkeys: Mapping[str, InstrumentedAttribute[Any]],
    tiebreak: InstrumentedAttribute[Any],
) -> tuple[int, list[Any]]:
    """`page_keys` in one statement: the page's keys, each row with the count of every match (a window count).

    For a query whose every match is read to order them anyway (no index gives its order), one pass over the
    matches instead of one to count them and one to choose the page. A page past the last match has no row to
    carry the count, which is then counted as page_keys does.
    """
    total = func.count().over().label("matches")
    chosen = _chosen(query, page, sortkeys, tiebreak).add_columns(total)
    rows = (await session.execute(chosen.execution_options(**OFF_LOOP))).all()
    if not rows:
        return await _count(session, query, page), []
    count = int(rows[0].matches)
    return (min(count, counting_limit(page)) if page.fuzzy_count else count), [row[0] for row in rows]


async def _count(session: AsyncSession, query: Select[Any], page: Page) -> int:
    matches = query.order_by(None)
    if page.fuzzy_count:
        matches = matches.limit(counting_limit(page))
    counted = select(func.count()).select_from(matches.subquery())
    return int(await session.scalar(counted.execution_options(**OFF_LOOP)) or 0)


def counting_limit(page: Page) -> int:
    """How many matches a fuzzy count reads at most."""
    return page.offset + page.limit + FUZZY_COUNT_BEYOND


def _chosen(
    query: Select[Any],
    page: Page,
    sortkeys: Mapping[str, InstrumentedAttribute[Any]],
    tiebreak: InstrumentedAttribute[Any],
) -> Select[Any]:
    """The keys of the page's rows, chosen on the sort key and the tiebreak alone."""
    ordered = query.with_only_columns(tiebreak).order_by(*_order(page, sortkeys, tiebreak))
    return ordered.offset(page.offset).limit(page.limit)


def _order(
    page: Page, sortkeys: Mapping[str, InstrumentedAttribute[Any]], tiebreak: InstrumentedAttribute[Any]
) -> list[Any]:
    column = sortkeys[page.sortkey]
    return [column.desc(), tiebreak.desc()] if page.descending else [column.asc(), tiebreak.asc()]
