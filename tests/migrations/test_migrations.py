"""The migrations are the schema: they build exactly what the models describe, on both engines."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from billplane.db import Database
from billplane.models import Base


def test_migrations_build_exactly_the_models_schema(database: Database) -> None:
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_every_table_of_the_model_exists_after_upgrade(database: Database) -> None:
    tables = set(inspect(database.engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables


def test_only_one_default_plan_per_project_is_enforced_by_the_database(database: Database) -> None:
    indexes = {i["name"]: i for i in inspect(database.engine).get_indexes("plans")}
    assert indexes["uq_plans_one_default_per_project"]["unique"]
