"""approver queue: entries carry what an approver's queue filters and sorts on

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 22:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Both dialects take UPDATE … FROM (SQLite since 3.33).
BACKFILL = """
UPDATE request_approvers
SET request_created = r.created,
    requester_id = r.requester_id,
    target_user_id = r.target_user_id,
    awaiting = (r.status = 'WAITING' AND r.current_step = request_approvers.step_index
                AND request_approvers.decision = 'WAITING')
FROM access_requests AS r
WHERE r.id = request_approvers.request_id
"""


def upgrade() -> None:
    with op.batch_alter_table("request_approvers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("awaiting", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("request_created", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("requester_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("target_user_id", sa.Uuid(), nullable=True))
    op.execute(BACKFILL)
    with op.batch_alter_table("request_approvers", schema=None) as batch_op:
        batch_op.alter_column("request_created", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.alter_column("requester_id", existing_type=sa.Uuid(), nullable=False)
        batch_op.alter_column("target_user_id", existing_type=sa.Uuid(), nullable=False)
    op.drop_index("ix_request_approvers_decider", table_name="request_approvers")
    op.create_index(
        "ix_request_approvers_decider",
        "request_approvers",
        ["decider_id"],
        unique=False,
        postgresql_where=sa.text("decider_id IS NOT NULL"),
        sqlite_where=sa.text("decider_id IS NOT NULL"),
    )
    op.create_index(
        "ix_request_approvers_awaiting",
        "request_approvers",
        ["role_id", "request_created", "request_id", "step_index", "requester_id", "target_user_id", "awaiting"],
        unique=False,
        postgresql_where=sa.text("awaiting"),
        sqlite_where=sa.text("awaiting = 1"),
    )


def downgrade() -> None:
    op.drop_index("ix_request_approvers_decider", table_name="request_approvers")
    op.create_index("ix_request_approvers_decider", "request_approvers", ["decider_id"], unique=False)
    op.drop_index(
        "ix_request_approvers_awaiting",
        table_name="request_approvers",
        postgresql_where=sa.text("awaiting"),
        sqlite_where=sa.text("awaiting = 1"),
    )
    with op.batch_alter_table("request_approvers", schema=None) as batch_op:
        batch_op.drop_column("target_user_id")
        batch_op.drop_column("requester_id")
        batch_op.drop_column("request_created")
        batch_op.drop_column("awaiting")
