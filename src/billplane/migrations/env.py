"""Alembic environment: runs billplane's migrations on the URL it is given."""

from alembic import context
from sqlalchemy import Connection

from billplane.db import create_db_engine
from billplane.models import Base

config = context.config
target_metadata = Base.metadata


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run_on(connection)
else:
    engine = create_db_engine(
        # Migrations run once: nothing to gain from prepared statements, and they may go
        # through PgBouncer in transaction mode too.
        config.get_main_option("sqlalchemy.url") or "",
        prepared_statements=False,
    )
    try:
        with engine.connect() as conn:
            run_on(conn)
    finally:  # a migration that stops with an error leaves no connection open either
        engine.dispose()
