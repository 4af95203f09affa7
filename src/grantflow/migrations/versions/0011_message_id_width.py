"""message id width: Message-ID and thread id hold a 253-character sender domain

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 11:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_messages") as batch:
        batch.alter_column("message_id", type_=sa.String(320), existing_type=sa.String(250), existing_nullable=False)
        batch.alter_column("thread_id", type_=sa.String(320), existing_type=sa.String(250), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox_messages") as batch:
        batch.alter_column("message_id", type_=sa.String(250), existing_type=sa.String(320), existing_nullable=False)
        batch.alter_column("thread_id", type_=sa.String(250), existing_type=sa.String(320), existing_nullable=False)
