"""login attempts in flight: the throttle tells attempts still being checked from failures

A refused attempt used to stay counted, so an API client fetching more tokens at once than the account limit
locked itself out for the whole window although every one of its logins was right. `in_flight` counts the
attempts admitted and not yet settled; an attempt over the limit is not counted, and waits while the limit is
taken by attempts in flight rather than by failures.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("login_attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("in_flight", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("login_attempts", schema=None) as batch_op:
        batch_op.drop_column("in_flight")
