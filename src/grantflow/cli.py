"""The `grantflow` command: serve, worker, admin tasks, database upgrades."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
import uvloop
from pydantic import BaseModel, ValidationError

from grantflow.config import Config, load_config
from grantflow.errors import GrantflowError, validation_error_body
from grantflow.kit import redact
from grantflow.kit.passwords import Passwords
from grantflow.kit.secretbox import load_secret_box
from grantflow.prepare import DatabaseTooNew, admin_session, prepare
from grantflow.role import service as role_service
from grantflow.user import service as user_service
from grantflow.user.schemas import LocalUserIn


def _group(help: str) -> typer.Typer:
    """A command group with plain help (rich help shows a <bool> metavar beside every flag)."""
    return typer.Typer(help=help, no_args_is_help=True, rich_markup_mode=None)


app = _group("grantflow: a self-hosted role-granting workflow engine.")
db_app = _group("Database schema.")
user_app = _group("Local users.")
role_app = _group("Roles and direct (mapped) memberships.")
client_app = _group("API clients (log in with the password or client_credentials grant).")
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(role_app, name="role")
source_app = _group("Identity sources: LDAP / Active Directory and OpenID Connect (docs/identity.md).")
app.add_typer(source_app, name="source")
tls_app = _group("TLS certificates.")
keys_app = _group("Token-signing keys.")
app.add_typer(keys_app, name="keys")
app.add_typer(client_app, name="api-client")
app.add_typer(tls_app, name="tls")

ConfigFile = Annotated[Path | None, typer.Option("--config", help="dotenv-style file of GRANTFLOW_* settings")]


def _prepared(config_file: Path | None) -> Config:
    config = load_config(config_file)
    try:
        result = prepare(config)
    except DatabaseTooNew as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if result.credentials_file is not None:
        typer.echo(
            f"generated initial credentials ({', '.join(result.generated)}) written to {result.credentials_file}"
        )
    return config


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on [default: 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="port [default: 8080]")] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="PEM certificate (chain): serve HTTPS")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key of --tls-cert")] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="processes serving the port (each also runs background work)")
    ] = 1,
    config_file: ConfigFile = None,
) -> None:
    """Migrate the database, then serve the API (HTTPS with --tls-cert and --tls-key)."""
    import uvicorn

    from grantflow.app import create_app
    from grantflow.http import server

    if (tls_cert is None) != (tls_key is None):
        raise typer.BadParameter("--tls-cert and --tls-key go together")
    config = _prepared(config_file)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    redact.install()
    server.configure(config)
    options: dict[str, Any] = {
        "host": host or config.host,
        "port": port or config.port,
        "http": server.PROTOCOL,
        "access_log": config.access_log,
        "proxy_headers": False,
        "ssl_certfile": str(tls_cert) if tls_cert else None,
        "ssl_keyfile": str(tls_key) if tls_key else None,
    }
    if workers == 1:
        uvicorn.run(create_app(config), **options)
        return
    # Worker processes build the app themselves, from the same environment (and configuration file).
    if config_file is not None:
        os.environ[CONFIG_FILE_VARIABLE] = str(config_file.resolve())
    uvicorn.run(
        "grantflow.cli:app_from_environment",
        factory=True,
        workers=workers,
        timeout_worker_healthcheck=config.worker_healthcheck_seconds,
        **options,
    )


CONFIG_FILE_VARIABLE = "GRANTFLOW_CONFIG_FILE"


def app_from_environment() -> Any:
    """The app of one `serve --workers N` process: configuration from the environment the parent left."""
    from grantflow.app import create_app
    from grantflow.http import server

    config_file = os.environ.get(CONFIG_FILE_VARIABLE)
    redact.install()
    config = load_config(Path(config_file) if config_file else None)
    server.configure(config)
    return create_app(config)


@app.command()
def worker(config_file: ConfigFile = None) -> None:
    """Migrate the database, then deliver mail and run the scheduler without serving the API (until SIGTERM)."""
    config = _prepared(config_file)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    uvloop.run(_run_worker(config))  # the event loop `serve` runs on (uvicorn picks uvloop)


async def _run_worker(config: Config) -> None:
    import signal

    from grantflow.jobs.workers import run_workers
    from grantflow.kit.clock import SystemClock
    from grantflow.runtime import open_runtime

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with open_runtime(config, SystemClock()) as runtime:
        logging.getLogger("grantflow").info("worker started: mail delivery and scheduler")
        await run_workers(runtime, stop)


@tls_app.command("init")
def tls_init(
    host: Annotated[list[str], typer.Option("--host", help="host name or IP address; repeat for more")],
    directory: Annotated[Path | None, typer.Option(help="where to write [default: DATA_DIR/tls]")] = None,
    force: Annotated[
        bool, typer.Option(help="replace an existing CA: every client holding the old ca.pem must get the new one")
    ] = False,
    config_file: ConfigFile = None,
) -> None:
    """Create a local CA (ca.pem) and a server certificate (server.pem, server.key) for the given hosts."""
    from datetime import UTC, datetime

    from grantflow.tls import init_tls

    config = load_config(config_file)
    target = directory or config.data_dir / "tls"
    if (target / "ca.pem").exists() and not force:
        _fail(f"{target / 'ca.pem'} exists and clients may trust it; pass --force to replace it")
    files = init_tls(target, host, datetime.now(UTC))
    typer.echo(f"CA certificate for clients: {files.ca_cert}")
    typer.echo(f"serve with: grantflow serve --tls-cert {files.server_cert} --tls-key {files.server_key}")


@db_app.command("upgrade")
def db_upgrade(config_file: ConfigFile = None) -> None:
    """Apply migrations and create the built-in roles, admin user and OAuth client if missing."""
    _prepared(config_file)
    typer.echo("database is up to date")


T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


def _fail(message: str) -> NoReturn:
    """An expected refusal: one line on standard error and exit status 1, no traceback."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _run(work: Coroutine[Any, Any, T]) -> T:
    """Run an admin task; a refusal by the services (a duplicate name, an unknown permission) is one clear line."""
    try:
        return asyncio.run(work)
    except GrantflowError as refused:
        where = f" ({refused.property})" if refused.property else ""
        _fail(f"{refused.message}{where}")


def _valid(model: type[M], fields: dict[str, Any]) -> M:
    """The API's input model for the command's values, or its first problem as one line."""
    try:
        return model.model_validate(fields)
    except ValidationError as invalid:
        body = validation_error_body(invalid.errors())
        _fail(f"{body.error_message} ({body.property})" if body.property else str(body.error_message))


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt("password", hide_input=True, confirmation_prompt=True))


@user_app.command("create")
def user_create(
    username: Annotated[str, typer.Argument(help="the name the user signs in with")],
    display_name: Annotated[str, typer.Option(help="the name others see")] = "",
    email: Annotated[str, typer.Option(help="where notifications go")] = "",
    password_stdin: Annotated[bool, typer.Option(help="read the password from standard input")] = False,
    config_file: ConfigFile = None,
) -> None:
    """Create a local user (the same rules as POST /local-user-store/api/v1/users: 8 to 1024 characters)."""
    config = _prepared(config_file)
    password = _read_password(password_stdin)
    fields = {"username": username, "display_name": display_name, "email": email, "password": {"password": password}}
    body = _valid(LocalUserIn, fields)

    async def run() -> str:
        async with admin_session(config) as session:
            user = await user_service.create_local_user(session, Passwords.from_config(config), body, author=None)
            return str(user.id)

    typer.echo(_run(run()))


@role_app.command("create")
def role_create(
    name: Annotated[str, typer.Argument(help="the role's unique name")],
    permission: Annotated[
        list[str] | None, typer.Option("--permission", "-p", help="e.g. workflows-manage; repeat for more")
    ] = None,
    comment: Annotated[str, typer.Option(help="what the role is for")] = "",
    config_file: ConfigFile = None,
) -> None:
    """Create a role with permissions."""
    config = _prepared(config_file)

    async def run() -> str:
        async with admin_session(config) as session:
            return str((await role_service.create_role(session, name, permission or [], comment)).id)

    typer.echo(_run(run()))


@role_app.command("add-member")
def role_add_member(
    role: Annotated[str, typer.Argument(help="the role's name")],
    username: Annotated[str, typer.Argument(help="who gets it")],
    config_file: ConfigFile = None,
) -> None:
    """Give a user a role directly (a mapped membership: it lets them approve for that role)."""
    config = _prepared(config_file)

    async def run() -> None:
        async with admin_session(config) as session:
            found_role = await role_service.get_role_by_name(session, role)
            user = await user_service.get_by_username(session, username)
            if found_role is None or user is None:
                _fail(f"no role {role!r}" if found_role is None else f"no user {username!r}")
            await role_service.add_mapped_member(session, found_role, user.id)

    _run(run())
    typer.echo(f"{username} is now a member of {role}")


@client_app.command("create")
def api_client_create(
    name: Annotated[str, typer.Argument(help="what the client is, e.g. deploy-bot")],
    role: Annotated[list[str] | None, typer.Option("--role", "-r", help="role name; repeat for more")] = None,
    config_file: ConfigFile = None,
) -> None:
    """Create an API client and print its id and secret (readable again through the local-user-store API)."""
    config = _prepared(config_file)

    async def run() -> tuple[str, str]:
        async with admin_session(config) as session:
            box = load_secret_box(config)
            client = await user_service.create_api_client(session, box, name, author=None)
            for role_name in role or []:
                found = await role_service.get_role_by_name(session, role_name)
                if found is None:
                    _fail(f"no role {role_name!r}")
                await role_service.add_mapped_member(session, found, client.id)
            return str(client.id), box.open(client.secret_sealed or "")

    client_id, secret = _run(run())
    typer.echo(f"id={client_id}\nsecret={secret}")


@keys_app.command("rotate")
def keys_rotate(config_file: ConfigFile = None) -> None:
    """Sign new tokens with a new key; tokens signed by the old one stay valid until they expire."""
    from datetime import UTC, datetime, timedelta

    from grantflow.auth.tokens import SIGNING_KEY_REFRESH_SECONDS, rotate

    config = _prepared(config_file)
    # Replicas may sign with the old key until they re-read the keys: keep it well past that and the token lifetime.
    keep = timedelta(seconds=config.access_token_lifetime_seconds + SIGNING_KEY_REFRESH_SECONDS + 3600)

    async def run() -> str:
        async with admin_session(config) as session:
            return (await rotate(session, load_secret_box(config), datetime.now(UTC), keep)).kid

    typer.echo(f"new signing key {_run(run())}")
    typer.echo(f"running servers start signing with it within {SIGNING_KEY_REFRESH_SECONDS:.0f} s (they re-read keys)")


@source_app.command("list")
def source_list(config_file: ConfigFile = None) -> None:
    """Every source: id, kind, name and the last sync's result."""
    from grantflow.identity import service as identity_service

    config = _prepared(config_file)

    async def run() -> list[str]:
        async with admin_session(config) as session:
            return [
                f"{s.id}  {s.kind:5}  {s.name}  {s.last_sync_result or ''}".rstrip()
                for s in await identity_service.list_sources(session)
            ]

    typer.echo("\n".join(_run(run())))


@source_app.command("add")
def source_add(
    file: Annotated[Path, typer.Argument(help="the source as POST /role-store/api/v1/sources takes it (JSON)")],
    secret_stdin: Annotated[bool, typer.Option(help="read the bind password or client secret from stdin")] = False,
    config_file: ConfigFile = None,
) -> None:
    """Add an LDAP or OpenID Connect source; prints its id."""
    import json

    from grantflow.identity import service as identity_service
    from grantflow.identity.schemas import SourceIn

    config = _prepared(config_file)
    try:
        fields = json.loads(file.read_text())
    except (OSError, ValueError) as unreadable:
        _fail(f"{file}: {unreadable}")
    if secret_stdin and isinstance(fields.get("connection"), dict):
        key = "client_secret" if str(fields["connection"].get("type", "")).upper() == "OIDC" else "bind_password"
        fields["connection"][key] = sys.stdin.readline().rstrip("\n")
    body = _valid(SourceIn, fields)

    async def run() -> str:
        async with admin_session(config) as session:
            return str((await identity_service.create_source(session, body, load_secret_box(config))).id)

    typer.echo(_run(run()))


def _source_work(config: Config, name: str, work: Callable[[Any, Any], Coroutine[Any, Any, T]]) -> T:
    """Run `work(runtime, source)` for the source called `name`."""
    from grantflow.identity import service as identity_service
    from grantflow.kit.clock import SystemClock
    from grantflow.runtime import open_runtime

    async def run() -> T:
        async with open_runtime(config, SystemClock()) as runtime:
            async with runtime.sessionmaker() as session:
                found = [s for s in await identity_service.list_sources(session) if s.name == name]
            if not found:
                _fail(f"no source {name!r}")
            return await work(runtime, found[0])

    return _run(run())


@source_app.command("test")
def source_test(name: Annotated[str, typer.Argument(help="the source's name")], config_file: ConfigFile = None) -> None:
    """Test a source's connection, stage by stage (no secret is printed); exit 1 when it fails."""
    from grantflow.identity import directory

    async def work(runtime: Any, source: Any) -> Any:
        return await directory.test_source(runtime, source)

    outcome = _source_work(_prepared(config_file), name, work)
    for key, value in outcome.details.items():
        typer.echo(f"{key}: {value}")
    if outcome.status != "OK":
        _fail(outcome.hint or "the connection test failed")


@source_app.command("sync")
def source_sync(
    name: Annotated[str, typer.Argument(help="the LDAP source's name")], config_file: ConfigFile = None
) -> None:
    """Sync an LDAP source now (the background jobs do it every sync_interval_minutes)."""
    from grantflow.identity import directory

    async def work(runtime: Any, source: Any) -> str:
        return (await directory.sync_source(runtime, source.id)).result

    result = _source_work(_prepared(config_file), name, work)
    typer.echo(result)
    if not result.startswith("ok"):
        raise typer.Exit(1)


def main() -> None:
    app()
