"""Schema 6: runs sent to a cluster's queue (`runs.job_id`: the scheduler's job, e.g. `slurm:1234`,
while the workbench follows it; `runs.job_state`: what the scheduler last said of it, e.g.
`PENDING (Priority)`), and archived runs (`runs.archived_at`: hidden from the default lists)."""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:  # SQLite: ALTER through a table copy where needed
        batch.add_column(sa.Column("job_id", sa.String(64)))
        batch.add_column(sa.Column("job_state", sa.String(200)))
        batch.add_column(sa.Column("archived_at", sa.Float))
        batch.create_index("ix_runs_archived_at", ["archived_at"])
