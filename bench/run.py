"""The benchmark suite: grantflow as the README starts it, driven by wrk, against baselines from the same run.

    make bench                                   # both backends, 10 thousand and 1 million requests
    python bench/run.py --backends sqlite --scales 10000 --seconds 5

For each backend and scale: a fresh database, seeded (bench/seed.py), `grantflow serve` on a free port, and a bare
FastAPI handler on the same server (bench/bare.py). Every scenario runs twice: at saturation (32 connections) for
throughput and CPU time per request, then paced at about half that rate for latency. Results go to
bench/results/<time>.json and a Markdown table on stdout; bench/plot.py draws the PNGs in docs/perf/.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet

sys.path.insert(0, str(Path(__file__).parent))
import rawdb
import seed as seeding

from grantflow.config import Config
from grantflow.prepare import admin_session, prepare
from grantflow.user import service as user_service

HERE = Path(__file__).parent
PG = os.environ.get("GRANTFLOW_BENCH_PG", "postgresql://root@127.0.0.1:5432")
ADMIN_PASSWORD = "bench-admin-password"
CLIENT_SECRET = "bench-client-secret"
READER, DECIDER = "user1", "user7"  # user7 holds role8, on which the decision pool waits
POOL = 6000
SATURATION_CONNECTIONS = 32
PACING = {"connections": 8}  # connections of the half-load runs (--paced-connections)
WE = "/workflow-engine/api/v1"


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int


@dataclass
class Result:
    backend: str
    scale: int
    scenario: str
    workers: int
    saturation: Run
    half: Run
    cpu_ms_per_request: float
    notes: str = ""
    raw_db_rps: float | None = None  # bench/rawdb.py: the same statements through the bare driver
    statements: int = 0


@dataclass
class Context:
    base: str
    tokens: dict[str, str] = field(default_factory=dict)
    ids: dict[str, Any] = field(default_factory=dict)


# -- processes ------------------------------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


@contextmanager
def process(command: list[str], env: dict[str, str], ready_url: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(ready_url)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of the process and its children (uvicorn --workers), from /proc."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


# -- wrk ------------------------------------------------------------------------------------------------------


@dataclass
class Spec:
    """One scenario's HTTP request, as wrk sends it and as bench/rawdb.py replays it in-process."""

    path: str
    method: str = "GET"
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def spec(scenario: str, ctx: Context, decision_id: str | None = None) -> Spec:
    def bearer(user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {ctx.tokens[user]}"}

    form = {"Content-Type": "application/x-www-form-urlencoded"}
    json_body = {"Content-Type": "application/json"}
    if scenario == "bare":
        return Spec("/bare")
    if scenario == "jwks":  # no token, no database: the app's routing and middleware
        return Spec("/auth/api/v1/jwks")
    if scenario == "status":  # no token, one database round trip (SELECT 1 on a pooled connection, no session)
        return Spec(f"{WE}/status")
    if scenario == "token_password":
        basic = base64.b64encode(f"privx-external:{CLIENT_SECRET}".encode()).decode()
        body = f"grant_type=password&username={READER}&password={READER}-password"
        return Spec("/auth/api/v1/oauth/token", "POST", body, {**form, "Authorization": f"Basic {basic}"})
    if scenario == "token_client_credentials":
        client_id, secret = ctx.ids["api_client"]
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        body = "grant_type=client_credentials"
        return Spec("/auth/api/v1/oauth/token", "POST", body, {**form, "Authorization": f"Basic {basic}"})
    if scenario == "get_request":
        return Spec(f"{WE}/requests/{ctx.ids['own_request']}", headers=bearer(READER))
    if scenario in ("active_approvals", "active_approvals_after_decisions"):
        return Spec(f"{WE}/requests?filter=active_approvals&limit=50", headers=bearer(DECIDER))
    if scenario == "search":
        return Spec(
            f"{WE}/requests/search?limit=50", "POST", '{"keywords": "ticket"}', {**json_body, **bearer(DECIDER)}
        )
    if scenario == "settings":
        return Spec(f"{WE}/settings", headers=bearer("admin"))
    if scenario == "create_request":
        body = json.dumps({"requested_role": {"id": ctx.ids["bench_role"]}, "grant_type": "PERMANENT"})
        return Spec(f"{WE}/requests", "POST", body, {**json_body, **bearer(READER)})
    if scenario == "decision":  # wrk's script walks the pool; a single call decides `decision_id`
        body = '{"step": 0, "decision": "APPROVED"}'
        return Spec(f"{WE}/requests/{decision_id}/decision", "POST", body, {**json_body, **bearer(DECIDER)})
    raise ValueError(scenario)


def lua(scenario: str, ctx: Context) -> str:
    """The wrk script of a scenario: its request, then the shared pacing and summary."""
    common = (HERE / "wrk" / "common.lua").read_text()
    if scenario == "decision":
        return decision_lua(ctx) + common
    request = spec(scenario, ctx)
    head = f"wrk.method = {json.dumps(request.method)}\nwrk.path = {json.dumps(request.path)}\n"
    if request.body is not None:
        head += f"wrk.body = {json.dumps(request.body)}\n"
    for name, value in request.headers.items():
        head += f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}\n"
    return head + common


def decision_lua(ctx: Context) -> str:
    """Each request decides the next undecided request of the pool (the threads take turns)."""
    ids = ctx.ids["pool"]
    return (
        "local ids = {" + ",".join(f'"{i}"' for i in ids) + "}\n"
        'local offset = tonumber(os.getenv("ID_OFFSET") or "0")\n'
        "local counter, created = 0, 0\n"
        "function setup(thread) created = created + 1; thread:set('tid', created) end\n"
        "function request()\n"
        "  counter = counter + 1\n"
        "  local i = (offset + (counter - 1) * 2 + (tid or 1) - 1) % #ids + 1\n"
        f'  return wrk.format("POST", "{WE}/requests/" .. ids[i] .. "/decision", '
        f'{{["Content-Type"] = "application/json", ["Authorization"] = "Bearer {ctx.tokens[DECIDER]}"}}, '
        '\'{"step": 0, "decision": "APPROVED"}\')\n'
        "end\n"
    )


def wrk(url: str, script: str, connections: int, seconds: float, pace_ms: float = 0, offset: int = 0) -> Run:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    env = {**os.environ, "PACE_MS": str(int(pace_ms)), "ID_OFFSET": str(offset)}
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "30s", "--latency", "-s", handle.name]
    command.append(url)
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False, timeout=seconds + 60)
    os.unlink(handle.name)
    match = re.search(r"RESULT (\{.*\})", done.stderr)
    if not match:
        raise RuntimeError(f"wrk failed: {done.stdout}\n{done.stderr}")
    raw = json.loads(match.group(1))
    return Run(
        rps=raw["requests"] / raw["seconds"],
        p50_ms=raw["p50_ms"],
        p99_ms=raw["p99_ms"],
        errors=raw["errors"],
        requests=raw["requests"],
    )


def measure(name: str, url: str, script: str, pid: int | None, seconds: float) -> tuple[Run, Run, float]:
    """Saturation (throughput, CPU per request), then paced at half that rate (latency)."""
    before = tree_cpu_seconds(pid) if pid else 0.0
    saturation = wrk(url, script, SATURATION_CONNECTIONS, seconds)
    cpu = (tree_cpu_seconds(pid) - before) if pid else 0.0
    paced = PACING["connections"]
    pace = 1000 * paced / max(saturation.rps / 2, 1)
    # Consumable inputs (the decision pool) continue where the saturation run stopped.
    half = wrk(url, script, paced, seconds, pace_ms=pace, offset=saturation.requests + 64)
    per_request = 1000 * cpu / max(saturation.requests, 1)
    print(
        f"  {name:26} {saturation.rps:8.0f} req/s  p99@half {half.p99_ms:7.1f} ms  cpu {per_request:6.2f} ms/req"
        + (f"  errors {saturation.errors}/{half.errors}" if saturation.errors or half.errors else ""),
        flush=True,
    )
    return saturation, half, per_request


# -- set-up ---------------------------------------------------------------------------------------------------


def database(backend: str, scale: int, data_dir: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{data_dir / 'grantflow.db'}"
    name = f"grantflow_bench_{scale}"
    subprocess.run(["dropdb", "--if-exists", "-h", "127.0.0.1", "-U", "root", name], check=True)
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "root", name], check=True)
    return f"{PG.replace('postgresql://', 'postgresql+asyncpg://')}/{name}"


async def give_passwords_and_client(config: Config) -> tuple[str, str]:
    """Seeded users have no password: the reader and the decider get one; an API client for client_credentials.

    Settings are stored before the server starts: the seeded history is up to 12 days old, and the scheduler
    would otherwise spend the run expiring and reminding thousands of old waiting requests in the background
    (its own cost is bench/scheduler.py's). At most 5 approvers are mailed per step.
    """
    from grantflow.engine_settings.schemas import SettingsIn
    from grantflow.engine_settings.service import update_settings
    from grantflow.kit.clock import utc_now
    from grantflow.kit.passwords import Passwords
    from grantflow.kit.secretbox import load_secret_box

    passwords = Passwords.from_config(config)
    async with admin_session(config) as session:
        quiet = SettingsIn(request_role_max_approvers=5, request_expiry_hours=8760, reminder_hours=0)
        await update_settings(session, load_secret_box(config), quiet, utc_now())
        for name in (READER, DECIDER):
            user = await user_service.get_by_username(session, name)
            assert user is not None
            await user_service.set_password(session, passwords, user.id, f"{name}-password")
        client = await user_service.create_api_client(session, load_secret_box(config), "bench-client", None)
        await session.commit()
    return str(client.id), load_secret_box(config).open(client.secret_sealed or "")


def token(base: str, username: str, password: str) -> str:
    response = httpx.post(
        f"{base}/auth/api/v1/oauth/token",
        data={"grant_type": "password", "username": username, "password": password},
        auth=("privx-external", CLIENT_SECRET),
        timeout=30,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def configure(ctx: Context) -> None:
    """A target role with a workflow anyone may use (no limit on open requests), and mail settings."""
    admin = {"Authorization": f"Bearer {ctx.tokens['admin']}"}
    role = httpx.post(f"{ctx.base}/role-store/api/v1/roles", json={"name": "bench-target"}, headers=admin, timeout=30)
    role.raise_for_status()
    role_id = role.json()["id"]
    approver = httpx.get(f"{ctx.base}/role-store/api/v1/roles", params={"limit": 100}, headers=admin, timeout=30)
    role8 = next(r["id"] for r in approver.json()["items"] if r["name"] == "role8")
    workflow = {
        "name": "bench",
        "grant_types": ["PERMANENT"],
        "max_active_requests": -1,
        "target_roles": [{"id": role_id}],
        "action": "GRANT",
        "steps": [{"name": "approve", "match": "ANY", "approvers": [{"role": {"id": role8}}]}],
    }
    httpx.post(f"{ctx.base}{WE}/workflows", json=workflow, headers=admin, timeout=30).raise_for_status()
    ctx.ids["bench_role"] = role_id


def describe_machine() -> dict[str, str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    memory = next(
        line.split(":", 1)[1].strip() for line in Path("/proc/meminfo").read_text().splitlines() if "MemTotal" in line
    )
    pg = subprocess.run(["psql", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout
    wrk_version = wrk_version.splitlines()[0]
    return {
        "cpus": str(os.cpu_count()),
        "cpu": cpu,
        "memory": memory,
        "python": platform.python_version(),
        "postgresql": pg,
        "wrk": wrk_version,
        "note": "server, database and wrk share these cores",
    }


# -- the suite ------------------------------------------------------------------------------------------------

SCENARIOS = [
    "jwks",
    "status",
    "token_client_credentials",
    "token_password",
    "get_request",
    "active_approvals",
    "search",
    "create_request",
    "decision",
    # The queue again, now that the decider has thousands of decisions: its cost must not grow with history.
    "active_approvals_after_decisions",
    "settings",
]


# No raw-driver baseline: no statements, or (password) argon2 is the cost by design and the statements insert a
# refresh token whose unique hash a replay cannot rename.
NO_RAW_BASELINE = {"bare", "jwks", "token_password"}


def raw_rate(config: Config, request: Spec, seconds: float, turns: rawdb.Turns | None) -> rawdb.RawRate:
    """The database's own rate for the statements this request makes grantflow send, and the costliest ones."""
    unit = asyncio.run(rawdb.capture(config, request.method, request.path, request.body, request.headers))
    url = config.resolved_database_url
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1]
        rate = rawdb.replay_sqlite(path, unit, seconds, turns)
        costs = rawdb.statement_costs_sqlite(path, unit, COST_ROUNDS, turns)
    else:
        dsn = url.replace("postgresql+asyncpg://", "postgresql://")
        pool = config.database_pool_size  # as many connections as grantflow's pool keeps
        rate = asyncio.run(rawdb.replay_postgresql(dsn, unit, seconds, SATURATION_CONNECTIONS, pool, turns))
        costs = asyncio.run(rawdb.statement_costs_postgresql(dsn, unit, COST_ROUNDS, turns))
    for ms, statement in sorted(zip(costs, unit.statements, strict=True), key=lambda c: -c[0])[:3]:
        print(f"      {ms:7.2f} ms  {' '.join(statement.sql.split())[:110]}", flush=True)
    return rate


COST_ROUNDS = 20


@dataclass
class Seeded:
    config: Config
    env: dict[str, str]  # what `grantflow serve` needs to find this database
    pool: list[str]  # ids of the waiting requests left to decide
    client: tuple[str, str]  # an API client's id and secret


def seeded(backend: str, scale: int, data_dir: Path, pool_size: int = 0) -> Seeded:
    """A fresh database in `data_dir` (or PostgreSQL), migrated and seeded, with the passwords the scenarios use."""
    url = database(backend, scale, data_dir)
    config = Config(
        data_dir=data_dir,
        database_url=url,
        secret_key=Fernet.generate_key().decode(),
        admin_password=ADMIN_PASSWORD,
        oauth_client_secret=CLIENT_SECRET,
    )
    prepare(config)
    asyncio.run(seeding.seed(url, scale))
    pool = asyncio.run(seeding.seed_pool(url, pool_size)) if pool_size else []
    client = asyncio.run(give_passwords_and_client(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRANTFLOW_")}
    env.update(
        GRANTFLOW_DATA_DIR=str(data_dir),
        GRANTFLOW_DATABASE_URL=url,
        GRANTFLOW_SECRET_KEY=config.secret_key.get_secret_value() if config.secret_key else "",
    )
    return Seeded(config, env, pool, client)


def run_backend(backend: str, scale: int, seconds: float, workers: int, scenarios: list[str]) -> list[Result]:
    results: list[Result] = []
    data_dir = Path(tempfile.mkdtemp(prefix=f"grantflow-bench-{backend}-"))
    try:
        started = time.perf_counter()
        database_ = seeded(backend, scale, data_dir, POOL)
        config, env, pool, client = database_.config, database_.env, database_.pool, database_.client
        print(f"{backend} at {scale:,} requests: seeded in {time.perf_counter() - started:.0f} s", flush=True)

        port, bare_port = free_port(), free_port()
        serve = [sys.executable, "-m", "grantflow", "serve", "--port", str(port), "--workers", str(workers)]
        bare = [sys.executable, str(HERE / "bare.py"), str(bare_port)]
        base = f"http://127.0.0.1:{port}"
        with (
            process(serve, env, f"{base}{WE}/status") as server,
            process(bare, env, f"http://127.0.0.1:{bare_port}/bare") as bare_server,
        ):
            ctx = Context(base=base)
            ctx.tokens["admin"] = token(base, "admin", ADMIN_PASSWORD)
            ctx.tokens[READER] = token(base, READER, f"{READER}-password")
            ctx.tokens[DECIDER] = token(base, DECIDER, f"{DECIDER}-password")
            # The last pooled request is kept out of wrk's way for the statement capture of a decision.
            ctx.ids.update(own_request=seeding.request_id(2000), pool=pool[:-1], api_client=client)
            configure(ctx)
            saturation, half, cpu = measure(
                "bare handler", f"http://127.0.0.1:{bare_port}", lua("bare", ctx), bare_server.pid, seconds
            )
            results.append(Result(backend, scale, "bare", workers, saturation, half, cpu))  # this run's baseline
            for scenario in scenarios:
                saturation, half, cpu = measure(scenario, base, lua(scenario, ctx), server.pid, seconds)
                result = Result(backend, scale, scenario, workers, saturation, half, cpu)
                if scenario not in NO_RAW_BASELINE:
                    # A decision's replay walks the pool from the end, away from the requests wrk decided.
                    turns = rawdb.Turns(pool[-1], pool[-2::-1]) if scenario == "decision" else None
                    raw = raw_rate(config, spec(scenario, ctx, decision_id=pool[-1]), seconds, turns)
                    result.raw_db_rps, result.statements = raw.units_per_second, raw.statements_per_unit
                    print(
                        f"  {'  raw driver, same SQL':26} {raw.units_per_second:8.0f} units/s  "
                        f"({raw.statements_per_unit} statements, {raw.errors} errors) {raw.first_error}",
                        flush=True,
                    )
                results.append(result)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--scales", default="10000,1000000")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--workers", default="1", help="comma-separated: serve --workers values (PostgreSQL)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--paced-connections", type=int, default=PACING["connections"])
    args = parser.parse_args()
    PACING["connections"] = args.paced_connections
    machine = describe_machine()
    print(json.dumps(machine, indent=1))
    results: list[Result] = []
    scenarios = args.scenarios.split(",")
    for backend in args.backends.split(","):
        for scale in (int(s) for s in args.scales.split(",")):
            worker_counts = [int(w) for w in args.workers.split(",")] if backend == "postgresql" else [1]
            for workers in worker_counts:
                results += run_backend(backend, scale, args.seconds, workers, scenarios)
    out = HERE / "results" / f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:4]}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"machine": machine, "results": [asdict(r) for r in results]}, indent=1))
    print(table(results))
    print(f"\nresults: {out}")


def table(results: list[Result]) -> str:
    bare = {(r.backend, r.scale, r.workers): r.saturation.rps for r in results if r.scenario == "bare"}
    lines = [
        "| backend | requests stored | workers | scenario | req/s at saturation | of bare | raw driver, same SQL "
        "| of raw | p50 / p99 ms at half | CPU ms/req |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ratio = r.saturation.rps / bare[(r.backend, r.scale, r.workers)]
        raw = f"{r.raw_db_rps:,.0f} ({r.statements})" if r.raw_db_rps else "-"
        of_raw = f"{r.saturation.rps / r.raw_db_rps:.1%}" if r.raw_db_rps else "-"
        lines.append(
            f"| {r.backend} | {r.scale:,} | {r.workers} | {r.scenario} | {r.saturation.rps:,.0f} | {ratio:.1%} | "
            f"{raw} | {of_raw} | {r.half.p50_ms:.1f} / {r.half.p99_ms:.1f} | {r.cpu_ms_per_request:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
