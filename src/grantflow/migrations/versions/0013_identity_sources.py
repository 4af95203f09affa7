"""identity sources: LDAP and OpenID sources, their users and groups, role source rules, implicit memberships

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 12:40:00
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NO_RULES = '{"type": "GROUP", "match": "ANY", "rules": []}'


def upgrade() -> None:
    sources = op.create_table(
        "sources",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("comment", sa.String(4000), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("secret_sealed", sa.Text(), nullable=True),
        sa.Column("last_sync", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_sync_result", sa.String(1000), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sources"),
        sa.UniqueConstraint("name", name="uq_sources_name"),
    )
    now = datetime.now(UTC)
    op.bulk_insert(
        sources,
        [
            {
                "id": uuid.uuid4(),
                "name": "Local users",
                "kind": "LOCAL",
                "enabled": True,
                "comment": "grantflow's own user store",
                "settings": {},
                "last_sync_result": "",
                "created": now,
                "updated": now,
            }
        ],
    )
    op.create_table(
        "user_groups",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("source_id", sa.Uuid(), nullable=False),
        sa.Column("group", sa.String(1000), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_user_groups_user_id_users", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["source_id"], ["sources.id"], name="fk_user_groups_source_id_sources", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "source_id", "group", name="pk_user_groups"),
    )
    op.create_table(
        "oidc_logins",
        sa.Column("nonce_hash", sa.String(64), nullable=False),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("nonce_hash", name="pk_oidc_logins"),
    )
    op.create_index("ix_oidc_logins_expires", "oidc_logins", ["expires"])
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("source_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("external_id", sa.String(1000), nullable=False, server_default=""))
        batch.add_column(sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.create_index("ix_users_source_entry", ["source_id", "external_id"])
    with op.batch_alter_table("roles") as batch:
        batch.add_column(sa.Column("source_rules", sa.JSON(), nullable=False, server_default=NO_RULES))
    op.create_index(
        "uq_memberships_implicit",
        "memberships",
        ["user_id", "role_id"],
        unique=True,
        sqlite_where=sa.text("source = 'IMPLICIT'"),
        postgresql_where=sa.text("source = 'IMPLICIT'"),
    )


def downgrade() -> None:
    op.drop_index("uq_memberships_implicit", table_name="memberships")
    with op.batch_alter_table("roles") as batch:
        batch.drop_column("source_rules")
    with op.batch_alter_table("users") as batch:
        batch.drop_index("ix_users_source_entry")
        batch.drop_column("disabled")
        batch.drop_column("external_id")
        batch.drop_column("source_id")
    op.drop_index("ix_oidc_logins_expires", table_name="oidc_logins")
    op.drop_table("oidc_logins")
    op.drop_table("user_groups")
    op.drop_table("sources")
