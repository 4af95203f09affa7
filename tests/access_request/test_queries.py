"""Who sees what: single reads, the five filters, search, paging and sorting."""

from __future__ import annotations

from datetime import timedelta

import pytest

from grantflow.access_request import queries
from grantflow.kit import pagination
from grantflow.kit.clock import FrozenClock
from tests.access_request.test_rules import assert_error
from tests.factories import WE, World, workflow_body


@pytest.fixture
async def queue(world: World, clock: FrozenClock) -> dict[str, str]:
    """alice asks for linux-admins (waiting on team leads), dave for db-owners (approved by bob, so done)."""
    r = world.roles
    await world.create_workflow(workflow_body(r["linux-admins"], ("ANY", [r["team-leads"]]), ("ANY", [r["security"]])))
    await world.create_workflow(workflow_body(r["db-owners"], ("ANY", [r["team-leads"]])))
    alice = (await world.request_role("alice", "linux-admins", request_justification="Incident ZX-81 on prod")).json()[
        "id"
    ]
    clock.advance(timedelta(minutes=5))
    dave = (await world.request_role("dave", "db-owners", request_justification="schema migration")).json()["id"]
    clock.advance(timedelta(minutes=5))
    assert (await world.decide("bob", dave, 0)).status_code == 200
    return {"alice": alice, "dave": dave}


async def _ids(world: World, who: str, filter: str, **params: object) -> list[str]:
    response = await world.client.get(
        f"{WE}/requests", params={"filter": filter, **params}, headers=await world.as_(who)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] >= len(body["items"])
    return [item["id"] for item in body["items"]]


async def test_stranger_cannot_read_someone_elses_request(world: World, queue: dict[str, str]) -> None:
    response = await world.get_request("erin", queue["alice"])
    assert_error(response, 404, "INVALID_REQUEST_DATA", "request_id")
    # Same answer as for an id that does not exist at all.
    missing = await world.get_request("erin", "00000000-0000-4000-8000-000000000000")
    assert missing.json() == response.json()


@pytest.mark.parametrize("who", ["alice", "bob", "carol", "grace"])
async def test_requester_approvers_and_auditors_can_read(world: World, queue: dict[str, str], who: str) -> None:
    assert (await world.get_request(who, queue["alice"])).status_code == 200


async def test_filters(world: World, queue: dict[str, str]) -> None:
    alice, dave = queue["alice"], queue["dave"]
    assert await _ids(world, "alice", "requests") == [alice]
    assert await _ids(world, "dave", "requests") == [dave]
    assert await _ids(world, "alice", "active_requests") == [alice]
    assert await _ids(world, "dave", "active_requests") == []
    assert await _ids(world, "bob", "active_approvals") == [alice]
    # Newest first by default (decisions.md §4).
    assert await _ids(world, "bob", "approvals") == [dave, alice]
    # carol approves step 1; alice's request is at step 0, so nothing is hers to decide yet.
    assert await _ids(world, "carol", "active_approvals") == []
    assert await _ids(world, "erin", "approvals") == []
    assert await _ids(world, "grace", "all") == [dave, alice]
    # Filters arrive in any case.
    assert await _ids(world, "bob", "ACTIVE_APPROVALS") == [alice]


async def test_filter_all_needs_requests_view(world: World, queue: dict[str, str]) -> None:
    response = await world.client.get(f"{WE}/requests", params={"filter": "all"}, headers=await world.as_("alice"))
    assert_error(response, 403, "PERMISSION_DENIED")


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("filter=requests&filter=all", 403),  # the last value counts, and is checked as if it came alone
        ("filter=all&filter=requests", 200),
        ("filter=%61ll", 403),  # percent-encoded "all"
        ("filter=requests&limit=1&limit=9999", 200),
    ],
)
async def test_repeated_or_encoded_parameters_do_not_widen_the_list(
    world: World, queue: dict[str, str], query: str, status: int
) -> None:
    response = await world.client.get(f"{WE}/requests?{query}", headers=await world.as_("alice"))
    assert response.status_code == status, response.text
    if status == 200:
        assert [i["id"] for i in response.json()["items"]] == [queue["alice"]]


async def test_filter_is_required_and_validated(world: World, queue: dict[str, str]) -> None:
    headers = await world.as_("alice")
    assert_error(await world.client.get(f"{WE}/requests", headers=headers), 400, "REQUIRED_VALUE_MISSING", "filter")
    bad = await world.client.get(f"{WE}/requests", params={"filter": "everything"}, headers=headers)
    assert_error(bad, 400, "VALUE_INCORRECT_FORMAT", "filter")


async def _search(world: World, who: str, body: dict[str, object], **params: object) -> list[str]:
    response = await world.client.post(f"{WE}/requests/search", json=body, params=params, headers=await world.as_(who))
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def test_search_by_keywords(world: World, queue: dict[str, str]) -> None:
    alice, dave = queue["alice"], queue["dave"]
    assert await _search(world, "grace", {"keywords": "alice@example.com"}) == [alice]
    assert await _search(world, "grace", {"keywords": "DB-OWNERS"}) == [dave]
    assert await _search(world, "grace", {"keywords": "zx-81"}) == [alice]
    assert await _search(world, "grace", {"keywords": "incident prod"}) == [alice]
    assert await _search(world, "grace", {"keywords": "incident migration"}) == []
    # LIKE wildcards in keywords are matched literally.
    assert await _search(world, "grace", {"keywords": "%"}) == []


async def test_search_finds_what_is_filed_and_forgets_what_is_deleted(world: World, queue: dict[str, str]) -> None:
    """Short terms, quotes and deletions, on the index SQLite keeps (FTS5) as on PostgreSQL's LIKE."""
    r = world.roles
    await world.create_workflow(workflow_body(r["security"], ("ANY", [r["team-leads"]])))
    filed = await world.request_role("carol", "security", request_justification='Ticket "Q-7" on Ünïcode host')
    assert filed.status_code == 201, filed.text
    new = filed.json()["id"]
    assert await _search(world, "grace", {"keywords": '"q-7"'}) == [new]
    assert await _search(world, "grace", {"keywords": "q-"}) == [new]  # two characters: below the trigram index
    assert await _search(world, "grace", {"keywords": "ünïcode"}) == [new]
    assert await _search(world, "grace", {"keywords": "q-7 zx-81"}) == []  # every keyword must match
    deleted = await world.client.delete(f"{WE}/requests/{new}", headers=await world.as_("admin"))
    assert deleted.status_code == 200, deleted.text
    assert await _search(world, "grace", {"keywords": "q-7"}) == []


async def _quarterly_checks(world: World, clock: FrozenClock) -> list[str]:
    """Four requests for linux-admins (team leads approve), a minute apart, each justified "quarterly check"."""
    await world.create_workflow(workflow_body(world.roles["linux-admins"], ("ANY", [world.roles["team-leads"]])))
    filed = []
    for who in ("alice", "dave", "erin", "heidi"):
        response = await world.request_role(who, "linux-admins", request_justification=f"quarterly check by {who}")
        assert response.status_code == 201, response.text
        filed.append(response.json()["id"])
        clock.advance(timedelta(minutes=1))
    return filed


async def test_an_auditors_search_counts_and_pages_alike_with_few_matches_or_many(
    world: World, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A search with few matches may be counted and ordered from one read of them, with more by the database: the
    same count and page either way."""
    filed = await _quarterly_checks(world, clock)

    async def page(sortdir: str) -> tuple[int, list[str]]:
        params = {"offset": 1, "limit": 2, "sortdir": sortdir}
        response = await world.client.post(
            f"{WE}/requests/search", json={"keywords": "quarterly"}, params=params, headers=await world.as_("grace")
        )
        assert response.status_code == 200, response.text
        return response.json()["count"], [item["id"] for item in response.json()["items"]]

    expected = {"ASC": (4, filed[1:3]), "DESC": (4, filed[::-1][1:3])}
    assert {d: await page(d) for d in expected} == expected  # as this backend does it
    for at_most in (1000, 3):  # four matches read once; more than three, counted and paged by the database
        monkeypatch.setattr(queries, "FEW_MATCHES", dict.fromkeys(queries.FEW_MATCHES, at_most))
        assert {d: await page(d) for d in expected} == expected, at_most


async def test_a_users_own_search_counts_and_pages_in_one_statement(
    world: World, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An approver's keyword search reads every request that concerns them, whatever the term, and takes the count
    with the page from one statement: the right count and items in both orders, past the last match (no row to
    carry the count) and with fuzzycount."""
    monkeypatch.setattr(pagination, "FUZZY_COUNT_BEYOND", 2)
    filed = await _quarterly_checks(world, clock)

    async def page(params: dict[str, object]) -> tuple[int, list[str]]:
        response = await world.client.post(
            f"{WE}/requests/search", json={"keywords": "Quarterly"}, params=params, headers=await world.as_("bob")
        )
        assert response.status_code == 200, response.text
        return response.json()["count"], [item["id"] for item in response.json()["items"]]

    assert await page({"offset": 1, "limit": 2, "sortdir": "ASC"}) == (4, filed[1:3])
    assert await page({"offset": 1, "limit": 2, "sortdir": "DESC"}) == (4, filed[::-1][1:3])
    assert await page({"offset": 10, "limit": 2}) == (4, [])
    assert await page({"limit": 1, "fuzzycount": "true"}) == (3, filed[-1:])  # 1 on the page + 2 beyond


async def test_search_cannot_widen_what_the_caller_sees(world: World, queue: dict[str, str]) -> None:
    assert await _search(world, "erin", {"keywords": "alice"}) == []
    assert await _search(world, "alice", {"keywords": "db-owners"}) == []
    assert await _search(world, "alice", {}) == [queue["alice"]]
    response = await world.client.post(
        f"{WE}/requests/search", json={}, params={"filter": "all"}, headers=await world.as_("alice")
    )
    assert_error(response, 403, "PERMISSION_DENIED")


async def test_search_by_time_window(world: World, queue: dict[str, str], clock: FrozenClock) -> None:
    start = clock.now()
    assert await _search(world, "grace", {"end_time": (start - timedelta(minutes=9)).isoformat()}) == [queue["alice"]]
    # dave's was filed at -5 min and decided at 0: still alive after alice's last change at -10 min.
    assert await _search(world, "grace", {"start_time": (start - timedelta(minutes=1)).isoformat()}) == [queue["dave"]]
    backwards = await world.client.post(
        f"{WE}/requests/search",
        json={"start_time": start.isoformat(), "end_time": (start - timedelta(days=1)).isoformat()},
        headers=await world.as_("grace"),
    )
    assert_error(backwards, 400, "INVALID_REQUEST_DATA", "end_time")


async def test_search_filter_in_query_or_body(world: World, queue: dict[str, str]) -> None:
    assert await _search(world, "bob", {}, filter="active_approvals") == [queue["alice"]]
    assert await _search(world, "bob", {"filter": "active_approvals"}) == [queue["alice"]]


async def test_paging_and_sorting(world: World, queue: dict[str, str]) -> None:
    alice, dave = queue["alice"], queue["dave"]
    assert await _ids(world, "grace", "all", sortkey="created", sortdir="ASC") == [alice, dave]
    assert await _ids(world, "grace", "all", sortkey="created", sortdir="desc") == [dave, alice]
    assert await _ids(world, "grace", "all", offset=1, limit=1) == [alice]
    page = await world.client.get(
        f"{WE}/requests", params={"filter": "all", "limit": 1}, headers=await world.as_("grace")
    )
    assert page.json()["count"] == 2
    assert len(page.json()["items"]) == 1


@pytest.mark.parametrize(
    ("params", "code", "prop"),
    [
        ({"offset": -1}, "VALUE_OUT_OF_BOUNDS", "offset"),
        ({"limit": 0}, "VALUE_OUT_OF_BOUNDS", "limit"),
        ({"limit": "ten"}, "VALUE_INCORRECT_TYPE", "limit"),
        ({"sortkey": "request_justification; DROP TABLE users"}, "VALUE_INCORRECT_FORMAT", "sortkey"),
        ({"sortdir": "SIDEWAYS"}, "VALUE_INCORRECT_FORMAT", "sortdir"),
    ],
)
async def test_bad_paging_is_refused(
    world: World, queue: dict[str, str], params: dict[str, object], code: str, prop: str
) -> None:
    response = await world.client.get(
        f"{WE}/requests", params={"filter": "all", **params}, headers=await world.as_("grace")
    )
    assert_error(response, 400, code, prop)


async def test_limit_above_100_is_clamped(world: World) -> None:
    r = world.roles
    await world.create_workflow(workflow_body(r["linux-admins"], ("ANY", [r["team-leads"]]), max_active_requests=-1))
    for _ in range(105):
        assert (await world.request_role("alice", "linux-admins")).status_code == 201
    response = await world.client.get(
        f"{WE}/requests", params={"filter": "requests", "limit": 500}, headers=await world.as_("alice")
    )
    assert response.json()["count"] == 105
    assert len(response.json()["items"]) == 100


async def test_unfiltered_search_lists_what_concerns_the_user(world: World, queue: dict[str, str]) -> None:
    """carol approves step 1: she may read the request now, but it is on her list only once it is hers to decide."""
    alice = queue["alice"]
    assert (await world.get_request("carol", alice)).status_code == 200
    assert await _search(world, "carol", {}) == []
    assert (await world.decide("bob", alice, 0)).status_code == 200
    assert await _search(world, "carol", {}) == [alice]
    assert (await world.decide("carol", alice, 1)).status_code == 200
    assert await _search(world, "carol", {}) == [alice]


async def _approver_queue(world: World, who: str, **params: object) -> tuple[int, list[str]]:
    """`active_approvals` as GET reads it (from the approver entries' index) and as search reads it (the general
    query over requests): both must say the same."""
    headers = await world.as_(who)
    listed = await world.client.get(f"{WE}/requests", params={"filter": "active_approvals", **params}, headers=headers)
    searched = await world.client.post(
        f"{WE}/requests/search", json={"filter": "active_approvals"}, params=params, headers=headers
    )
    assert listed.status_code == searched.status_code == 200, listed.text + searched.text
    fast = (listed.json()["count"], [item["id"] for item in listed.json()["items"]])
    general = (searched.json()["count"], [item["id"] for item in searched.json()["items"]])
    assert fast == general
    return fast


async def test_the_approver_queue_follows_every_change_of_its_requests(world: World, clock: FrozenClock) -> None:
    r = world.roles
    # frank holds both team-leads and security: two entries of his on the first step, one request in his queue.
    await world.create_workflow(
        workflow_body(r["linux-admins"], ("ANY", [r["team-leads"], r["security"]]), ("ANY", [r["security"]]))
    )
    await world.create_workflow(workflow_body(r["db-owners"], ("ANY", [r["team-leads"]])))
    first = (await world.request_role("alice", "linux-admins")).json()["id"]
    clock.advance(timedelta(minutes=1))
    second = (await world.request_role("dave", "db-owners")).json()["id"]

    assert await _approver_queue(world, "frank") == (2, [second, first])
    assert await _approver_queue(world, "frank", offset=1, limit=1) == (2, [first])
    assert await _approver_queue(world, "frank", sortdir="ASC") == (2, [first, second])
    assert await _approver_queue(world, "bob") == (2, [second, first])
    assert await _approver_queue(world, "carol") == (1, [first])

    assert (await world.decide("bob", first, 0)).status_code == 200  # on to step 1: security only
    assert await _approver_queue(world, "bob") == (1, [second])
    assert await _approver_queue(world, "carol") == (1, [first])

    cancelled = await world.client.delete(f"{WE}/requests/{second}", headers=await world.as_("dave"))
    assert cancelled.status_code == 200
    assert await _approver_queue(world, "bob") == (0, [])

    assert (await world.decide("carol", first, 1, "DENIED")).status_code == 200
    assert await _approver_queue(world, "carol") == (0, [])
    assert await _approver_queue(world, "frank") == (0, [])

    own = (await world.request_role("bob", "db-owners")).json()["id"]
    assert await _approver_queue(world, "bob") == (0, [])  # never one's own request
    assert await _approver_queue(world, "frank") == (1, [own])


async def test_a_step_the_approver_decided_leaves_their_queue_until_the_next_step(world: World) -> None:
    """frank holds both roles an ALL step needs: he may decide one entry, not both, and the next step is his again."""
    r = world.roles
    await world.create_workflow(
        workflow_body(r["linux-admins"], ("ALL", [r["team-leads"], r["security"]]), ("ANY", [r["security"]]))
    )
    asked = (await world.request_role("alice", "linux-admins")).json()["id"]
    assert await _approver_queue(world, "frank") == (1, [asked])

    assert (await world.decide("frank", asked, 0)).status_code == 200  # one entry of step 0 decided
    assert await _approver_queue(world, "frank") == (0, [])
    assert await _approver_queue(world, "carol") == (1, [asked])  # the security entry still waits

    assert (await world.decide("carol", asked, 0)).status_code == 200  # step 0 done: on to step 1
    assert await _approver_queue(world, "frank") == (1, [asked])  # his decision was on a step now closed
    assert (await world.decide("frank", asked, 1)).status_code == 200
    assert await _approver_queue(world, "frank") == (0, [])


async def test_search_by_status_and_no_field_is_silently_ignored(world: World, queue: dict[str, str]) -> None:
    alice, dave = queue["alice"], queue["dave"]
    assert await _search(world, "grace", {"status": "WAITING"}) == [alice]
    assert await _search(world, "grace", {"status": "approved"}) == [dave]
    assert sorted(await _search(world, "grace", {"status": ["WAITING", "APPROVED"]})) == sorted([alice, dave])
    assert await _search(world, "grace", {"status": "DENIED", "keywords": "alice"}) == []
    assert sorted(await _search(world, "grace", {"status": ""})) == sorted([alice, dave])
    headers = await world.as_("grace")
    unknown = await world.client.post(f"{WE}/requests/search", json={"requester": "alice"}, headers=headers)
    assert_error(unknown, 400, "INVALID_REQUEST_DATA", "requester")
    bad = await world.client.post(f"{WE}/requests/search", json={"status": "DONE"}, headers=headers)
    assert_error(bad, 400, "VALUE_INCORRECT_FORMAT", "status.0")


async def test_fuzzycount_counts_only_so_far_past_the_page_and_pages_the_same(
    world: World, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`fuzzycount=true` (the Go SDK's filters.FuzzyCount): the count stops FUZZY_COUNT_BEYOND matches past the page,
    a lower bound that still says there is more; the items are the same as without it."""
    monkeypatch.setattr(pagination, "FUZZY_COUNT_BEYOND", 2)
    r = world.roles
    await world.create_workflow(workflow_body(r["linux-admins"], ("ANY", [r["team-leads"]])))
    await world.create_workflow(workflow_body(r["db-owners"], ("ANY", [r["team-leads"]])))
    for who in ("alice", "dave", "erin", "heidi"):
        for role in ("linux-admins", "db-owners"):
            response = await world.request_role(who, role, request_justification="fuzzy check")
            assert response.status_code == 201, response.text
            clock.advance(timedelta(minutes=1))

    async def listed(who: str, path: str, **params: object) -> tuple[int, list[str]]:
        headers = await world.as_(who)
        if path == "search":
            response = await world.client.post(
                f"{WE}/requests/search", json={"keywords": "fuzzy"}, params=params, headers=headers
            )
        else:
            response = await world.client.get(f"{WE}/requests", params={"filter": path, **params}, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()["count"], [item["id"] for item in response.json()["items"]]

    for who, path in (("bob", "active_approvals"), ("grace", "all"), ("grace", "search")):
        exact_count, first_two = await listed(who, path, limit=2)
        assert exact_count == 8, (who, path)
        assert await listed(who, path, limit=2, fuzzycount="true") == (4, first_two)  # 2 on the page + 2 beyond
        assert (await listed(who, path, offset=4, limit=2, fuzzycount="true"))[0] == 8  # exact near the end
        assert await listed(who, path, limit=2, fuzzycount="false") == (8, first_two)
    refused = await world.client.get(
        f"{WE}/requests", params={"filter": "all", "fuzzycount": "maybe"}, headers=await world.as_("grace")
    )
    assert_error(refused, 400, "VALUE_INCORRECT_TYPE", "fuzzycount")
