"""Every table, imported in one place so that Base.metadata is complete for Alembic."""

from grantflow.access_request.models import AccessRequest, RequestApprover
from grantflow.audit.models import AuditEvent
from grantflow.auth.models import SigningKey
from grantflow.db import Base
from grantflow.engine_settings.models import EngineSettings
from grantflow.grant.models import Grant
from grantflow.identity.models import OidcLogin, Source, UserGroup
from grantflow.notification.models import OutboxMessage
from grantflow.oauth.models import AuthorizationFlow, LoginAttempts, OAuthClient, RefreshToken
from grantflow.role.models import Membership, Role
from grantflow.runtime.turns import JobTurn
from grantflow.user.models import User
from grantflow.web.models import WebSession
from grantflow.workflow.models import Workflow, WorkflowTargetRole

__all__ = [
    "AccessRequest",
    "AuditEvent",
    "AuthorizationFlow",
    "Base",
    "EngineSettings",
    "Grant",
    "JobTurn",
    "LoginAttempts",
    "Membership",
    "OAuthClient",
    "OidcLogin",
    "OutboxMessage",
    "RefreshToken",
    "RequestApprover",
    "Role",
    "SigningKey",
    "Source",
    "User",
    "UserGroup",
    "WebSession",
    "Workflow",
    "WorkflowTargetRole",
]
