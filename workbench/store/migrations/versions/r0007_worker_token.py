"""Schema 7: which start of a run's training holds it (`runs.worker_token`): only the worker
given it writes to the run, so a worker judged gone while alive writes nothing over the run's
next start."""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:  # SQLite: ALTER through a table copy where needed
        batch.add_column(sa.Column("worker_token", sa.String(32)))
