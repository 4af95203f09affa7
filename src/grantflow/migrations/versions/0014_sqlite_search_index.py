"""sqlite search index: an FTS5 trigram index of access_requests.search_text, kept by triggers (SQLite only)

PostgreSQL has had a trigram GIN index on the column since the first schema. On SQLite, keyword search was a LIKE
scan of every visible request; FTS5's trigram tokenizer matches the same substrings from an index. The index
refers to requests by rowid: after a VACUUM (which may renumber rowids of this table) rebuild it with
INSERT INTO access_requests_search(access_requests_search) VALUES ('rebuild').

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 13:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATEMENTS = [
    "CREATE VIRTUAL TABLE access_requests_search USING fts5("
    "search_text, content='access_requests', content_rowid='rowid', tokenize='trigram')",
    "INSERT INTO access_requests_search(access_requests_search) VALUES ('rebuild')",
    "CREATE TRIGGER access_requests_search_insert AFTER INSERT ON access_requests BEGIN "
    "INSERT INTO access_requests_search(rowid, search_text) VALUES (new.rowid, new.search_text); END",
    "CREATE TRIGGER access_requests_search_delete AFTER DELETE ON access_requests BEGIN "
    "INSERT INTO access_requests_search(access_requests_search, rowid, search_text) "
    "VALUES ('delete', old.rowid, old.search_text); END",
    "CREATE TRIGGER access_requests_search_update AFTER UPDATE OF search_text ON access_requests BEGIN "
    "INSERT INTO access_requests_search(access_requests_search, rowid, search_text) "
    "VALUES ('delete', old.rowid, old.search_text); "
    "INSERT INTO access_requests_search(rowid, search_text) VALUES (new.rowid, new.search_text); END",
]


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for trigger in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS access_requests_search_{trigger}")
    op.execute("DROP TABLE IF EXISTS access_requests_search")
