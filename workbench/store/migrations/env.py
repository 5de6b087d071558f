"""Alembic's environment for `workbench.store.migrate`: it runs the scripts on the connection
the store hands over (`config.attributes["connection"]`), in batch mode for SQLite."""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
