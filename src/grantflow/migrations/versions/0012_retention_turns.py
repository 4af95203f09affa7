"""retention turns: job_turns records when a periodic job (retention) last ran on any replica

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 12:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_turns",
        sa.Column("name", sa.String(60), nullable=False),
        sa.Column("last_run", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_job_turns"),
    )
    # What retention deletes by age is found by its time columns.
    op.create_index("ix_refresh_tokens_expires", "refresh_tokens", ["expires"])
    op.create_index("ix_authorization_flows_expires", "authorization_flows", ["expires"])


def downgrade() -> None:
    op.drop_index("ix_authorization_flows_expires", table_name="authorization_flows")
    op.drop_index("ix_refresh_tokens_expires", table_name="refresh_tokens")
    op.drop_table("job_turns")
