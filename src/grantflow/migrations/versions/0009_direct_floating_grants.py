"""direct floating grants: grants.direct marks a floating membership given through PUT users/{id}/roles

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 10:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("grants") as batch:
        batch.add_column(sa.Column("direct", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("grants") as batch:
        batch.drop_column("direct")
