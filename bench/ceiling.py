"""How fast `GET /requests/{id}` could be in this stack: the endpoint against the same read with the transaction
opened by the handler, without FastAPI's dependency system, and without the ORM session, served side by side by
one process.

    python bench/ceiling.py --backend sqlite --rounds 8

The server is the app `grantflow serve` builds, on uvicorn with the same protocol and access log, with three routes
in front of the API's, each checking the same token and rendering the same object as the endpoint:
`/ceiling/handler/{id}` is a FastAPI route that opens the read transaction itself instead of taking it from the
yield dependency; `/ceiling/transaction/{id}` is a plain Starlette route with the same transaction;
`/ceiling/connection/{id}` the same on a pooled connection without a session (every statement of this read is a
prepared one, which runs on either). The four answers are compared byte for byte first; then wrk alternates
between the bare handler (bench/bare.py, logging as the server does) and the four, the order reversed every other
round, and prints each one's median and share of the bare rate.

The extra routes exist only in this process: they measure what issue 16's 20% target would take, nothing serves
them.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import sys
import tempfile
import uuid
from pathlib import Path
from typing import cast

import httpx
import run as suite
import seed as seeding
import uvicorn
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from grantflow.access_request import render
from grantflow.access_request.schemas import AccessRequestOut
from grantflow.auth.principal import Principal
from grantflow.auth.scopes import Scope
from grantflow.db import transaction
from grantflow.http.deps import RequestsRead, authenticate, bearer_token
from grantflow.runtime import Runtime, RuntimeDep

READ_SCOPES = [Scope.ADMIN, Scope.WORKFLOWS_REQUESTS, Scope.REQUESTS_VIEW]  # the endpoint's (RequestsRead)
ROUTES = {
    "endpoint": f"{suite.WE}/requests/{{request_id}}",
    "handler": "/ceiling/handler/{request_id}",
    "transaction": "/ceiling/transaction/{request_id}",
    "connection": "/ceiling/connection/{request_id}",
}


async def _caller(request: Request) -> tuple[Runtime, Principal, uuid.UUID]:
    runtime: Runtime = request.app.state.runtime
    principal = await authenticate(runtime, bearer_token(request), READ_SCOPES)
    return runtime, principal, uuid.UUID(request.path_params["request_id"])


async def in_handler(request_id: uuid.UUID, principal: RequestsRead, runtime: RuntimeDep) -> AccessRequestOut:
    """The endpoint with the transaction opened by the handler instead of FastAPI's yield dependency."""
    async with transaction(runtime.sessionmaker, writes=False) as session:
        return await render.read_request(session, principal, request_id, runtime.clock.now())


async def via_transaction(request: Request) -> Response:
    runtime, principal, request_id = await _caller(request)
    async with transaction(runtime.sessionmaker, writes=False) as session:
        found = await render.read_request(session, principal, request_id, runtime.clock.now())
    return Response(found.model_dump_json(), media_type="application/json")


async def via_connection(request: Request) -> Response:
    runtime, principal, request_id = await _caller(request)
    async with runtime.engine.connect() as connection:
        # The caller's own request: no statement on this path but prepared ones, which take a connection too.
        on = cast(AsyncSession, connection)
        found = await render.read_request(on, principal, request_id, runtime.clock.now())
    return Response(found.model_dump_json(), media_type="application/json")


def serve(port: int, access_log: bool) -> None:
    """The child process: serve's app and server options, the three routes first."""
    from grantflow.cli import app_from_environment
    from grantflow.http import server

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = app_from_environment()
    app.add_api_route(ROUTES["handler"], in_handler, methods=["GET"], response_model=AccessRequestOut)
    handler = app.router.routes.pop()  # added last: first, as the others
    app.router.routes[:0] = [
        handler,
        Route(ROUTES["transaction"], via_transaction),
        Route(ROUTES["connection"], via_connection),
    ]
    uvicorn.run(app, host="127.0.0.1", port=port, http=server.PROTOCOL, access_log=access_log, proxy_headers=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--scale", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=True, help="serve's default: on")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the child process, on this port
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.access_log)
        return
    data_dir = Path(tempfile.mkdtemp(prefix="grantflow-ceiling-"))
    try:
        env = suite.seeded(args.backend, args.scale, data_dir).env
        _compare(args, env)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def _compare(args: argparse.Namespace, env: dict[str, str]) -> None:
    port, bare_port = suite.free_port(), suite.free_port()
    base, bare_base = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{bare_port}"
    log = "--access-log" if args.access_log else "--no-access-log"
    server = [sys.executable, __file__, "--serve", str(port), log]
    bare = [sys.executable, str(suite.HERE / "bare.py"), str(bare_port), log]  # logging as the server does
    with suite.process(server, env, f"{base}{suite.WE}/status"), suite.process(bare, env, f"{bare_base}/bare"):
        token = suite.token(base, suite.READER, f"{suite.READER}-password")
        request_id = seeding.request_id(2000)  # the reader's own, as the suite's get_request
        paths = {name: path.replace("{request_id}", request_id) for name, path in ROUTES.items()}
        headers = {"Authorization": f"Bearer {token}"}
        answers = {name: httpx.get(base + path, headers=headers, timeout=30) for name, path in paths.items()}
        if len({(a.status_code, a.content) for a in answers.values()}) != 1:
            raise SystemExit(f"the routes answer differently: {answers}")
        scripts = {name: _script(path, token) for name, path in paths.items()}
        rates: dict[str, list[float]] = {"bare": [], **{name: [] for name in paths}}
        for round_ in range(args.rounds):
            order = list(paths) if round_ % 2 == 0 else list(reversed(paths))
            rates["bare"].append(suite.wrk(bare_base, _script("/bare", ""), 32, args.seconds).rps)
            for name in order:
                rates[name].append(suite.wrk(base, scripts[name], 32, args.seconds).rps)
    bare_rate = statistics.median(rates["bare"])
    log = "on" if args.access_log else "off"
    print(
        f"{args.backend}, {args.scale:,} stored, access log {log}; median of {args.rounds} rounds of {args.seconds:g} s"
    )
    for name, values in rates.items():
        rate = statistics.median(values)
        runs = ", ".join(f"{v:,.0f}" for v in values)
        print(f"  {name:12} {rate:8,.0f} req/s  {rate / bare_rate:6.1%} of bare  ({runs})")


def _script(path: str, token: str) -> str:
    head = f'wrk.method = "GET"\nwrk.path = "{path}"\n'
    if token:
        head += f'wrk.headers["Authorization"] = "Bearer {token}"\n'
    return head + (suite.HERE / "wrk" / "common.lua").read_text()


if __name__ == "__main__":
    main()
