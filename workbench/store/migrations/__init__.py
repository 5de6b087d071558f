"""Alembic migration scripts of the run database, shipped with the package (one per schema
version; `workbench.store.migrate` applies them). Each script spells out its own tables and
columns: never the current ORM classes, which describe only the newest schema."""
