"""Schema 5: liveness and cancel for runs on any host (`runs.heartbeat_at`: the worker's last sign
of life; `runs.cancel_requested_at`: a cancel its worker honours at the next step)."""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:  # SQLite: ALTER through a table copy where needed
        batch.add_column(sa.Column("heartbeat_at", sa.Float))
        batch.add_column(sa.Column("cancel_requested_at", sa.Float))
