"""Alembic environment: memberflow hands Alembic an open connection (``storage.schema_upgrade``)."""

from alembic import context
from memberflow.storage.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
