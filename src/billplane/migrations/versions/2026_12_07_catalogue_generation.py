"""catalogue generation: a project's plans change, its generation changes, in the same transaction

Revision ID: ecf37c2bea85
Revises: 05323f7e0564
Create Date: 2026-12-04 19:00:00

Workers keep each project's plans, versions and grants between requests, under the project's
`catalogue_generation` (see entitlements/catalogue.py). Triggers give the project a new random
generation whenever a row of `plans`, `plan_versions` or `plan_grants` is written, and a new
project one of its own, so no write path can forget it.

SQLite drops a table's triggers with the table: a later migration that rebuilds one of these
tables (a batch "move and copy") must create its triggers again
(tests/entitlements/test_catalogue.py fails otherwise).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ecf37c2bea85"
down_revision: str | None = "05323f7e0564"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, how a row names its project). The statements below are made of these constants only.
WRITTEN = [
    ("plans", "{row}.project_id"),
    ("plan_versions", "(SELECT project_id FROM plans WHERE id = {row}.plan_id)"),
    ("plan_grants", "(SELECT project_id FROM plans WHERE id = {row}.plan_id)"),
]
EVENTS = [("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")]
POSTGRESQL_RANDOM = "(random() * 9.2e18)::bigint"


def upgrade() -> None:
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("catalogue_generation", sa.BigInteger(), server_default="0", nullable=False)
        )
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_triggers()
    else:
        _sqlite_triggers()


def _sqlite_triggers() -> None:
    op.execute("UPDATE projects SET catalogue_generation = random()")
    op.execute(
        "CREATE TRIGGER catalogue_project_created AFTER INSERT ON projects BEGIN "
        "UPDATE projects SET catalogue_generation = random() WHERE id = NEW.id; END"
    )
    for table, project in WRITTEN:
        for event, row in EVENTS:
            op.execute(
                f"CREATE TRIGGER catalogue_{table}_{event.lower()} AFTER {event} ON {table} "  # noqa: S608
                f"BEGIN UPDATE projects SET catalogue_generation = random() "
                f"WHERE id = {project.format(row=row)}; END"
            )


def _postgresql_triggers() -> None:
    op.execute(f"UPDATE projects SET catalogue_generation = {POSTGRESQL_RANDOM}")  # noqa: S608
    op.execute(
        "CREATE FUNCTION catalogue_project_created() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN NEW.catalogue_generation := {POSTGRESQL_RANDOM}; RETURN NEW; END $$"
    )
    op.execute(
        "CREATE TRIGGER catalogue_project_created BEFORE INSERT ON projects "
        "FOR EACH ROW EXECUTE FUNCTION catalogue_project_created()"
    )
    for table, project in WRITTEN:
        op.execute(
            f"CREATE FUNCTION catalogue_{table}_written() RETURNS trigger LANGUAGE plpgsql AS $$ "  # noqa: S608
            "DECLARE written record; "
            "BEGIN "
            "IF TG_OP = 'DELETE' THEN written := OLD; ELSE written := NEW; END IF; "
            f"UPDATE projects SET catalogue_generation = {POSTGRESQL_RANDOM} "
            f"WHERE id = {project.format(row='written')}; "
            "RETURN NULL; "
            "END $$"
        )
        op.execute(
            f"CREATE TRIGGER catalogue_{table}_written AFTER INSERT OR UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION catalogue_{table}_written()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, _ in WRITTEN:
            op.execute(f"DROP TRIGGER catalogue_{table}_written ON {table}")
            op.execute(f"DROP FUNCTION catalogue_{table}_written()")
        op.execute("DROP TRIGGER catalogue_project_created ON projects")
        op.execute("DROP FUNCTION catalogue_project_created()")
    else:
        for table, _ in WRITTEN:
            for event, _ in EVENTS:
                op.execute(f"DROP TRIGGER catalogue_{table}_{event.lower()}")
        op.execute("DROP TRIGGER catalogue_project_created")
    # Not in batch mode: on SQLite that copies `projects` and drops the original, and the drop
    # would cascade to everything a project has.
    op.execute("ALTER TABLE projects DROP COLUMN catalogue_generation")
