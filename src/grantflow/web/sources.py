"""The administrator's page of identity sources: list them, add an LDAP directory or an OpenID provider, test
a connection, sync a directory now, delete a source. The same services and scopes as /role-store/api/v1/sources."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.auth.scopes import Scope
from grantflow.db import ReadSessionDep, SessionDep
from grantflow.errors import Duplicate
from grantflow.identity import directory
from grantflow.identity import service as identity_service
from grantflow.identity.schemas import SourceIn
from grantflow.runtime import RuntimeDep
from grantflow.web.admin import require
from grantflow.web.forms import FieldErrors, errors_of, parse, whole_number
from grantflow.web.pages import CheckedForm, PageRoute, SignedIn, form_text, redirect
from grantflow.web.pages import render as page
from grantflow.web.sessions import Viewer

router = APIRouter(prefix="/admin/sources", route_class=PageRoute, include_in_schema=False)
LDAP_FIELDS = (
    "address",
    "bind_dn",
    "user_base",
    "user_filter",
    "username_attribute",
    "display_name_attribute",
    "email_attribute",
    "group_base",
    "nested_groups",
    "ca_file",
)
OIDC_FIELDS = ("issuer", "client_id", "groups_claim", "username_claim")
# What a redirect may ask the page to say: fixed texts, so a link cannot put words on the page.
NOTICES = {
    "added": "The source was added. Test its connection next.",
    "synced": "The directory was synced: see its last sync below.",
    "deleted": "The source was deleted; its users are disabled.",
}


async def _page(
    request: Request,
    session: AsyncSession,
    viewer: Viewer,
    notice: str = "",
    errors: FieldErrors | None = None,
    values: dict[str, Any] | None = None,
    test: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    sources = [identity_service.render(s) for s in await identity_service.list_sources(session)]
    return page(
        request,
        "admin_sources.html",
        viewer,
        status_code=status,
        sources=sources,
        notice=notice,
        errors=errors or {},
        values=values or {},
        test=test,
        may_manage=viewer.principal.has(Scope.SOURCES_MANAGE),
    )


@router.get("")
async def sources(request: Request, viewer: SignedIn, session: ReadSessionDep) -> Response:
    require(viewer, Scope.SOURCES_VIEW, Scope.SOURCES_MANAGE)
    return await _page(request, session, viewer, NOTICES.get(request.query_params.get("notice", ""), ""))


def _body(form: Any) -> dict[str, Any]:
    kind = form_text(form, "type").upper()
    fields = LDAP_FIELDS if kind == "LDAP" else OIDC_FIELDS
    connection: dict[str, Any] = {"type": kind, **{f: form_text(form, f) for f in fields if form_text(form, f)}}
    if kind == "LDAP":
        connection["starttls"] = form.get("starttls") == "on"
        connection["bind_password"] = form_text(form, "secret") or None
        if form_text(form, "sync_interval_minutes"):
            connection["sync_interval_minutes"] = whole_number(form_text(form, "sync_interval_minutes"))
    else:
        connection["client_secret"] = form_text(form, "secret") or None
    return {"name": form_text(form, "name"), "connection": connection}


@router.post("")
async def add_source(
    request: Request, viewer: SignedIn, form: CheckedForm, session: SessionDep, runtime: RuntimeDep
) -> Response:
    require(viewer, Scope.SOURCES_MANAGE)
    values = _body(form)
    body, errors = parse(SourceIn, values)
    if body is not None:
        try:
            await identity_service.create_source(session, body, runtime.secret_box)
            return redirect("/admin/sources?notice=added")
        except Duplicate as refused:
            await session.rollback()
            errors = errors_of(refused)
    shown = {
        "name": values["name"],
        **{k: v for k, v in values["connection"].items() if k not in ("bind_password", "client_secret")},
    }
    return await _page(request, session, viewer, errors=errors, values=shown, status=400)


@router.post("/{source_id}/test")
async def test_source(
    request: Request,
    source_id: uuid.UUID,
    viewer: SignedIn,
    _form: CheckedForm,
    session: ReadSessionDep,
    runtime: RuntimeDep,
) -> Response:
    require(viewer, Scope.SOURCES_MANAGE)
    source = await identity_service.get_source(session, source_id)
    outcome = await directory.test_source(runtime, source)
    test = {"name": source.name, "ok": outcome.status == "OK", "details": outcome.details, "hint": outcome.hint}
    return await _page(request, session, viewer, test=test)


@router.post("/{source_id}/sync")
async def sync_source(
    source_id: uuid.UUID, viewer: SignedIn, _form: CheckedForm, session: ReadSessionDep, runtime: RuntimeDep
) -> Response:
    require(viewer, Scope.SOURCES_MANAGE)
    await identity_service.get_source(session, source_id)
    await directory.sync_source(runtime, source_id)
    return redirect("/admin/sources?notice=synced")


@router.post("/{source_id}/delete")
async def delete_source(source_id: uuid.UUID, viewer: SignedIn, _form: CheckedForm, session: SessionDep) -> Response:
    require(viewer, Scope.SOURCES_MANAGE)
    await identity_service.delete_source(session, source_id)
    return redirect("/admin/sources?notice=deleted")
