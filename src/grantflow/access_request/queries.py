"""Reading requests: who may see one, the five list filters, the approver queue, keyword search."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from itertools import groupby
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    column,
    func,
    literal_column,
    or_,
    select,
    text,
    true,
    tuple_,
    union,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from grantflow.access_request import policy
from grantflow.access_request.models import AccessRequest, Decision, RequestAction, RequestApprover, RequestStatus
from grantflow.access_request.records import (
    ENTRY_COLUMNS,
    GRANT_COLUMNS,
    REQUEST_COLUMNS,
    AnyRequest,
    EntryRecord,
    GrantRecord,
    RequestRecord,
)
from grantflow.access_request.schemas import SearchIn
from grantflow.auth.principal import Principal
from grantflow.auth.scopes import Scope
from grantflow.errors import ErrorCode, InvalidRequestData, NotFound, PermissionDenied
from grantflow.grant.models import Grant
from grantflow.kit.pagination import (
    OFF_LOOP,
    Page,
    counting_limit,
    page_keys,
    page_keys_few,
    page_keys_windowed,
)
from grantflow.kit.prepared import Prepared
from grantflow.role import service as role_service

SORT_KEYS = {
    "created": AccessRequest.created,
    "updated": AccessRequest.updated,
    "status": AccessRequest.status,
    "id": AccessRequest.id,
}


MAX_KEYWORDS = 10
# How a keyword search counts and pages its matches. Within what concerns the user, the search reads every such
# request whatever the term, so the page and the count come from one statement (kit.pagination.page_keys_windowed):
# for the heavy approver's "ticket" at a million (10,500 matches) SQLite took 130 ms for it, against 46 + 129 +
# 138 ms for a thousand keys read once, the count and the page; PostgreSQL 186-191 ms with 11 ms of the server's
# CPU, against 254-261 ms and 89-94 ms for the 10,500 keys read once and ordered here; at 10k the same either way.
# Over every request (an auditor's) the index finds the matches, and FEW_MATCHES says how many at most are read once
# to count and order them here (kit.pagination.page_keys_few) instead of finding them twice; None: never.
# - PostgreSQL: the trigram lookup is the cost (a selective term 25 -> 14 ms); beyond a thousand, reading the
#   first ones cost more than it saved for a common word.
# - SQLite: FTS5 answers a selective term in 10 ms; reading the first thousand made a common one slower (760 ->
#   966 ms).
FEW_MATCHES: dict[str, int | None] = {"postgresql": 1_000, "sqlite": None}


class RequestFilter(StrEnum):
    REQUESTS = "requests"
    ACTIVE_REQUESTS = "active_requests"
    APPROVALS = "approvals"
    ACTIVE_APPROVALS = "active_approvals"
    ALL = "all"


def parse_filter(value: str | None) -> RequestFilter | None:
    """Filters are accepted in any case: the PrivX UI sends lower case, newer OpenAPI documents upper."""
    if value is None or value == "":
        return None
    try:
        return RequestFilter(value.lower())
    except ValueError:
        raise InvalidRequestData(
            f"filter must be one of: {', '.join(f.value for f in RequestFilter)}",
            property="filter",
            error_code=ErrorCode.VALUE_INCORRECT_FORMAT,
        ) from None


async def load_for_update(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID, now: datetime
) -> AccessRequest:
    """The request, locked against concurrent writers (row lock on PostgreSQL, write lock on SQLite)."""
    query = select(AccessRequest).where(AccessRequest.id == request_id).with_for_update(of=AccessRequest)
    request = await session.scalar(query.execution_options(populate_existing=True))
    if request is None or not await visible(session, principal, request, now):
        raise NotFound("request not found", property="request_id")
    return request


def sees_everything(principal: Principal) -> bool:
    return principal.has(Scope.REQUESTS_VIEW)


def _with_grant_and_entries(condition: ColumnElement[bool]) -> Prepared:
    """Requests with their grant and approver entries, one row per entry (at least one row per request)."""
    return Prepared(
        select(
            *(AccessRequest.__table__.c[name] for name in REQUEST_COLUMNS),
            *(Grant.__table__.c[name] for name in GRANT_COLUMNS),
            *(RequestApprover.__table__.c[name] for name in ENTRY_COLUMNS),
        )
        .select_from(AccessRequest)
        .outerjoin(Grant, Grant.request_id == AccessRequest.id)
        .outerjoin(RequestApprover, RequestApprover.request_id == AccessRequest.id)
        .where(condition)
        .order_by(AccessRequest.id, RequestApprover.step_index, RequestApprover.position)
    )


_ONE_REQUEST = _with_grant_and_entries(AccessRequest.id == bindparam("request_id"))  # GET /requests/{id}
_REQUESTS = _with_grant_and_entries(AccessRequest.id.in_(bindparam("request_ids", expanding=True)))  # a page


async def one_request(session: AsyncSession, request_id: uuid.UUID) -> RequestRecord | None:
    """The request with its approver entries and its grant, in one statement."""
    found = _records(await _ONE_REQUEST.rows(session, request_id=request_id))
    return found[0] if found else None


async def requests_by_id(session: AsyncSession, request_ids: list[uuid.UUID]) -> list[RequestRecord]:
    """The requests of a page in the order of `request_ids` (one statement); ids that are gone are left out."""
    if not request_ids:
        return []
    found = {r.id: r for r in _records(await _REQUESTS.rows(session, request_ids=request_ids))}
    return [found[i] for i in request_ids if i in found]


_GRANT_AT = len(REQUEST_COLUMNS)
_ENTRY_AT = _GRANT_AT + len(GRANT_COLUMNS)


def _records(rows: list[tuple[Any, ...]]) -> list[RequestRecord]:
    """Records from `_with_grant_and_entries` rows, which come grouped by request."""
    records: list[RequestRecord] = []
    for _, group in groupby(rows, key=itemgetter(0)):
        request_rows = list(group)
        first = request_rows[0]
        entries = tuple(EntryRecord(*row[_ENTRY_AT:]) for row in request_rows if row[_ENTRY_AT] is not None)
        grant = GrantRecord(*first[_GRANT_AT:_ENTRY_AT]) if first[_GRANT_AT] is not None else None
        columns = dict(zip(REQUEST_COLUMNS, first, strict=False))
        records.append(RequestRecord(**columns, approvers=entries, grant=grant))
    return records


async def visible(session: AsyncSession, principal: Principal, request: AnyRequest, now: datetime) -> bool:
    if sees_everything(principal) or principal.user_id in (request.requester_id, request.target_user_id):
        return True
    if any(a.decider_id == principal.user_id for a in request.approvers):
        return True
    mapped = await role_service.mapped_role_ids(session, principal.user_id, now)
    return any(a.role_id in mapped for a in request.approvers)


def policy_state(request: AccessRequest) -> policy.RequestState:
    """The request as the pure policy sees it."""
    steps = tuple(
        policy.Step(
            match=s.match,
            approvers=tuple(
                policy.ApproverEntry(a.role_id, Decision(a.decision), a.decider_id) for a in request.step_entries(i)
            ),
        )
        for i, s in enumerate(request.step_snapshots)
    )
    return policy.RequestState(
        status=RequestStatus(request.status),
        current_step=request.current_step,
        steps=steps,
        requester_id=request.requester_id,
        target_user_id=request.target_user_id,
    )


async def may_decide(session: AsyncSession, principal: Principal, request_id: uuid.UUID, now: datetime) -> bool:
    """Whether the caller could decide the current step now: policy.decide, tried without writing anything."""
    request = await session.get(AccessRequest, request_id)
    if request is None:
        return False
    mapped = frozenset(await role_service.mapped_role_ids(session, principal.user_id, now))
    try:
        policy.decide(
            policy_state(request),
            actor_id=principal.user_id,
            actor_mapped_roles=mapped,
            step=request.current_step,
            decision=Decision.APPROVED,
        )
    except (InvalidRequestData, PermissionDenied):
        return False
    return True


def may_revoke(request: AnyRequest, principal: Principal) -> bool:
    """Whether this caller may take away the role the request granted (policy.may_revoke)."""
    return policy.may_revoke(
        status=RequestStatus(request.status),
        is_grant=request.action == RequestAction.GRANT,
        already_revoked=request.target_role_revoked,
        can_bypass=request.snapshot.can_bypass_revoke_workflow,
        actor_is_admin=principal.is_admin,
        actor_approved_it=any(
            a.decider_id == principal.user_id and a.decision == Decision.APPROVED for a in request.approvers
        ),
    )


async def list_requests(
    session: AsyncSession,
    principal: Principal,
    request_filter: RequestFilter | None,
    page: Page,
    now: datetime,
    search: SearchIn | None = None,
) -> tuple[int, list[RequestRecord]]:
    """One query for every list and search: the filter, what the caller may see, then keywords and time."""
    count, ids = await _listed_ids(session, principal, request_filter, page, now, search)
    return count, await requests_by_id(session, ids)


async def _listed_ids(
    session: AsyncSession,
    principal: Principal,
    request_filter: RequestFilter | None,
    page: Page,
    now: datetime,
    search: SearchIn | None,
) -> tuple[int, list[uuid.UUID]]:
    mapped = await role_service.mapped_role_ids(session, principal.user_id, now)
    if request_filter == RequestFilter.ACTIVE_APPROVALS and search is None and page.sortkey == "created":
        return await _approver_queue(session, principal.user_id, mapped, page)
    dialect = session.get_bind().dialect.name
    query = select(AccessRequest.id).where(_filter_condition(principal, request_filter, mapped))
    if search is None:
        return await page_keys(session, query, page, SORT_KEYS, AccessRequest.id)
    # The search indexes pay off when the caller may see everything; a user's own list is small, and reading
    # every indexed match of a common word to intersect it with that list cost 34 times the LIKE (SQLite).
    everything = sees_everything(principal) and request_filter in (None, RequestFilter.ALL)
    query = query.where(*_search_conditions(search, dialect if everything else ""))
    if not search.keywords.strip():
        return await page_keys(session, query, page, SORT_KEYS, AccessRequest.id)
    if not everything:
        return await page_keys_windowed(session, query, page, SORT_KEYS, AccessRequest.id)
    few = FEW_MATCHES[dialect]
    if few is None:
        return await page_keys(session, query, page, SORT_KEYS, AccessRequest.id)
    return await page_keys_few(session, query, page, SORT_KEYS, AccessRequest.id, few)


async def list_decided_by(session: AsyncSession, user_id: uuid.UUID, page: Page) -> tuple[int, list[RequestRecord]]:
    """The requests this user decided a step of, from the decided-by index alone (the web UI's "Decided by you")."""
    query = select(AccessRequest.id).where(AccessRequest.id.in_(_decided_by(user_id)))
    count, ids = await page_keys(session, query, page, SORT_KEYS, AccessRequest.id)
    return count, await requests_by_id(session, ids)


def _filter_condition(
    principal: Principal, request_filter: RequestFilter | None, mapped: set[uuid.UUID]
) -> ColumnElement[bool]:
    """Each filter as a set of request ids built from indexed branches (an OR of EXISTS would scan every row)."""
    me = principal.user_id
    match request_filter:
        case RequestFilter.REQUESTS:
            return _mine(me)
        case RequestFilter.ACTIVE_REQUESTS:
            return and_(_mine(me), AccessRequest.status == RequestStatus.WAITING)
        case RequestFilter.APPROVALS:
            return AccessRequest.id.in_(union(_decided_by(me), _decidable_by(me, mapped)))
        case RequestFilter.ACTIVE_APPROVALS:
            return AccessRequest.id.in_(_decidable_by(me, mapped))
        case RequestFilter.ALL:
            if not sees_everything(principal):
                raise PermissionDenied("filter=all needs the requests-view permission")
            return true()
        case None:
            if sees_everything(principal):
                return true()
            # Without a filter, a user's list is what concerns them: `requests` and `approvals` together.
            return AccessRequest.id.in_(
                union(
                    select(AccessRequest.id).where(AccessRequest.requester_id == me),
                    select(AccessRequest.id).where(AccessRequest.target_user_id == me),
                    _decided_by(me),
                    _decidable_by(me, mapped),
                )
            )
    raise AssertionError(request_filter)


def _mine(user_id: uuid.UUID) -> ColumnElement[bool]:
    return or_(AccessRequest.requester_id == user_id, AccessRequest.target_user_id == user_id)


def _decided_by(user_id: uuid.UUID) -> Select[uuid.UUID]:
    return select(RequestApprover.request_id).where(RequestApprover.decider_id == user_id)


def _awaiting_mine(user_id: uuid.UUID, role_ids: set[uuid.UUID]) -> list[ColumnElement[bool]]:
    """Entries the user may decide now (policy.decide): awaiting, of a mapped role, not on their own request, and
    not on a step they already decided. Everything here is in ix_request_approvers_awaiting."""
    return [
        RequestApprover.awaiting == true(),  # rendered as the partial index is written, on both dialects
        _of_roles(role_ids),
        RequestApprover.requester_id != user_id,
        RequestApprover.target_user_id != user_id,
        _not_decided_by(user_id),
    ]


def _of_roles(role_ids: set[uuid.UUID]) -> ColumnElement[bool]:
    """One role as an equality, so that the entries come in index order by creation time; several as IN."""
    if len(role_ids) == 1:
        return RequestApprover.role_id == next(iter(role_ids))
    return RequestApprover.role_id.in_(role_ids or [uuid.UUID(int=0)])


def _not_decided_by(user_id: uuid.UUID) -> ColumnElement[bool]:
    """The entry's step is not one the user decided: NOT IN over the user's decisions on steps still waiting.

    Only decisions on open steps can share a step with an entry still awaiting, and they are few whatever the
    user's history (one range of ix_request_approvers_decider). Over every decision the user ever made, the queue
    grew with the approver's past: SQLite scanned that list once per waiting entry (282 ms after 5,000 decisions).
    """
    mine = _DECIDED
    decided = select(mine.request_id, mine.step_index).where(mine.decider_id == user_id, mine.step_open == true())
    return tuple_(RequestApprover.request_id, RequestApprover.step_index).not_in(decided)


# One alias for every queue query: a new one per call made SQLAlchemy adapt its columns afresh (a tenth of the
# heavy approver's queue in the profile); each subquery it appears in is its own scope in the SQL.
_DECIDED = aliased(RequestApprover, name="decided")


def _decidable_by(user_id: uuid.UUID, role_ids: set[uuid.UUID]) -> Select[uuid.UUID]:
    """Waiting requests whose current step has an undecided entry of the user's mapped roles (policy.decide)."""
    return select(RequestApprover.request_id).where(*_awaiting_mine(user_id, role_ids))


async def _approver_queue(
    session: AsyncSession, user_id: uuid.UUID, role_ids: set[uuid.UUID], page: Page
) -> tuple[int, list[uuid.UUID]]:
    """`active_approvals` by creation time, counted and paged on the entries' index alone.

    Each role's queue is counted on its own; only when two or more have entries can they share a request, and
    only then is the whole queue made distinct to count it. The page is taken from each role's queue in index
    order, `offset + limit` entries at most from each, then merged: a request is in the first k of the whole
    queue only if it is in the first k of one role's. Ordering the whole queue to cut one page from it cost
    10-16 ms for an approver with 16,000 waiting.
    """
    if not role_ids:
        return 0, []
    if page.fuzzy_count:
        # The first `cap` entries of each role, one index range each, hold at least `cap` requests exactly when the
        # whole queue does (a role has one entry per request in its queue); fewer, and they are the whole queue.
        cap = counting_limit(page)
        roles = role_ids  # empty roles cost an empty index range below
        firsts = union(*(_first_of_role(user_id, r, page, cap) for r in sorted(roles))).subquery()
        counted = select(func.count()).select_from(firsts).execution_options(**OFF_LOOP)
        count = min(await session.scalar(counted) or 0, cap)
    else:
        waiting = await _waiting_per_role(session, user_id, role_ids)
        roles = set(waiting)
        if len(waiting) <= 1:
            count = sum(waiting.values())  # a step has one entry per role: one role's queue has no request twice
        else:
            queue = _entries(user_id, roles).distinct().subquery()
            count = await session.scalar(select(func.count()).select_from(queue).execution_options(**OFF_LOOP)) or 0
    if not count:
        return 0, []
    tops = [_first_of_role(user_id, r, page, page.offset + page.limit) for r in sorted(roles)]
    merged = union(*tops).subquery()  # each request once
    chosen = select(merged.c.request_id).order_by(*_ordered(page, merged.c.request_created, merged.c.request_id))
    page_ids = chosen.offset(page.offset).limit(page.limit).execution_options(**OFF_LOOP)
    return count, list(await session.scalars(page_ids))


def _entries(user_id: uuid.UUID, role_ids: set[uuid.UUID]) -> Select[uuid.UUID, datetime]:
    return select(RequestApprover.request_id, RequestApprover.request_created).where(*_awaiting_mine(user_id, role_ids))


def _first_of_role(user_id: uuid.UUID, role_id: uuid.UUID, page: Page, limit: int) -> Select[uuid.UUID, datetime]:
    """The first `limit` entries of one role's queue, in the page's order (a range of the index)."""
    order = _ordered(page, RequestApprover.request_created, RequestApprover.request_id)
    top = _entries(user_id, {role_id}).order_by(*order).limit(limit).subquery()
    return select(top.c.request_id, top.c.request_created)


def _ordered(page: Page, *columns: Any) -> list[ColumnElement[Any]]:
    return [c.desc() if page.descending else c.asc() for c in columns]


async def _waiting_per_role(
    session: AsyncSession, user_id: uuid.UUID, role_ids: set[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """How many entries wait for the user in each of their roles that has any (one index range per role)."""
    if not role_ids:
        return {}
    per_role = (
        select(RequestApprover.role_id, func.count())
        .where(*_awaiting_mine(user_id, role_ids))
        .group_by(RequestApprover.role_id)
        .execution_options(**OFF_LOOP)
    )
    return {role_id: int(n) for role_id, n in await session.execute(per_role)}


def _search_conditions(search: SearchIn, dialect: str) -> list[ColumnElement[bool]]:
    """Every keyword must appear; the window keeps requests alive at some moment in it.

    Keywords are substrings of the request's search text: PostgreSQL's trigram index serves the LIKE; with
    `dialect` "sqlite", keywords of three characters or more go to the FTS5 trigram index (migration 0014), shorter
    ones are LIKE.

    A request is in the window when it was created before the window ends and last changed after it starts.
    """
    terms = [t for t in search.keywords.lower().replace(",", " ").split() if t][:MAX_KEYWORDS]
    indexed = [t for t in terms if len(t) >= TRIGRAM] if dialect == "sqlite" else []
    conditions: list[ColumnElement[bool]] = [
        AccessRequest.search_text.like(f"%{_escape_like(t)}%", escape="\\") for t in terms if t not in indexed
    ]
    if indexed:
        conditions.append(_sqlite_search_index(indexed))
    if search.start_time and search.end_time and search.end_time < search.start_time:
        raise InvalidRequestData("end_time must not be before start_time", property="end_time")
    if search.status:
        conditions.append(AccessRequest.status.in_([str(s) for s in search.status]))
    if search.end_time is not None:
        conditions.append(AccessRequest.created <= search.end_time)
    if search.start_time is not None:
        conditions.append(AccessRequest.updated >= search.start_time)
    return conditions


TRIGRAM = 3  # FTS5's trigram tokenizer finds substrings of at least three characters


def _sqlite_search_index(terms: list[str]) -> ColumnElement[bool]:
    """Requests whose search text contains every term, found in the FTS5 index (each term a quoted phrase)."""
    phrases = " AND ".join('"' + term.replace('"', '""') + '"' for term in terms)
    found = text("SELECT rowid FROM access_requests_search WHERE access_requests_search MATCH :phrases")
    rowids = found.bindparams(phrases=phrases).columns(column("rowid"))
    return literal_column("access_requests.rowid").in_(rowids)


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def waiting_using_role(session: AsyncSession, role_id: uuid.UUID) -> list[uuid.UUID]:
    """Waiting requests that ask for the role or wait for its members' decision."""
    waiting = AccessRequest.status == RequestStatus.WAITING
    as_target = select(AccessRequest.id).where(waiting, AccessRequest.requested_role_id == role_id)
    as_approver = (
        select(AccessRequest.id)
        .join(RequestApprover, RequestApprover.request_id == AccessRequest.id)
        .where(waiting, RequestApprover.role_id == role_id)
    )
    return list(await session.scalars(union(as_target, as_approver)))


async def waiting_for_user(session: AsyncSession, user_id: uuid.UUID) -> list[uuid.UUID]:
    """Waiting requests whose target is the user."""
    waiting = AccessRequest.status == RequestStatus.WAITING
    return list(await session.scalars(select(AccessRequest.id).where(waiting, AccessRequest.target_user_id == user_id)))
