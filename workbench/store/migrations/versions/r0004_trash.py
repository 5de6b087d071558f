"""Schema 4: the Trash (`runs.trashed_at`: when a run was moved there; null for the others)."""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:  # SQLite: ALTER through a table copy where needed
        batch.add_column(sa.Column("trashed_at", sa.Float))
        batch.create_index("ix_runs_trashed_at", ["trashed_at"])
