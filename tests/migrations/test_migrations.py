"""The migrations are the schema: they build exactly what the models describe, on both engines."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from billplane.appwebhooks.signing import unseal
from billplane.db import Database
from billplane.migrate import SecretKeyNeeded, alembic_config, downgrade, upgrade
from billplane.models import Base
from billplane.settings import Settings
from conftest import fresh_database
from factories import SECRET_KEY

NOW = datetime(2026, 12, 1, tzinfo=UTC).isoformat(sep=" ")


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


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_events_come_to_belong_to_their_counters_and_nothing_is_lost(
    engine: str, tmp_path: Path
) -> None:
    """The migration that gives each event its counter as its one foreign key: an event of an
    older database without a counter gets one that holds what the events counted, and deleting
    a tenant still takes its events along (through its counters). It also downgrades."""
    with fresh_database(engine, tmp_path) as plain_url:
        url = Settings(database_url=plain_url).sqlalchemy_url
        config = alembic_config(url)
        command.downgrade(config, "7d5f8d332b5b")
        engine_ = create_engine(url)
        with engine_.begin() as conn:
            if engine == "sqlite":
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            conn.execute(
                text(
                    "INSERT INTO projects (id, key, name, origins, created_at)"
                    " VALUES (1, 'p', 'P', '[]', :t)"
                ),
                {"t": NOW},
            )
            conn.execute(
                text(
                    "INSERT INTO features (id, project_id, key, name, type, created_at)"
                    " VALUES (1, 1, 'f', 'F', 'limit', :t)"
                ),
                {"t": NOW},
            )
            conn.execute(
                text(
                    "INSERT INTO tenants (id, project_id, key, name, created_at, updated_at)"
                    " VALUES (1, 1, 'acme', 'Acme', :t, :t)"
                ),
                {"t": NOW},
            )
            conn.execute(
                text(
                    "INSERT INTO usage_counters (tenant_id, feature_id, period_key, used)"
                    " VALUES (1, 1, 'm:2026-11', 2)"
                )
            )
            for key, period, quantity in [
                ("a", "m:2026-11", 2),
                ("b", "m:2026-12", 3),
                ("c", "m:2026-12", 4),
            ]:
                conn.execute(
                    text(
                        "INSERT INTO usage_events (tenant_id, feature_id, idempotency_key,"
                        " quantity, period_key, occurred_at, recorded_at, response)"
                        " VALUES (1, 1, :key, :q, :period, :t, :t, '{}')"
                    ),
                    {"key": key, "q": quantity, "period": period, "t": NOW},
                )
        upgrade(url)
        with engine_.begin() as conn:
            counters = conn.execute(
                text("SELECT period_key, used FROM usage_counters ORDER BY period_key")
            ).all()
            assert [tuple(c) for c in counters] == [("m:2026-11", 2), ("m:2026-12", 7)]
        foreign = inspect(engine_).get_foreign_keys("usage_events")
        assert [(f["referred_table"], f["constrained_columns"]) for f in foreign] == [
            ("usage_counters", ["tenant_id", "feature_id", "period_key"])
        ]
        with engine_.begin() as conn:
            if engine == "sqlite":
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            conn.execute(text("DELETE FROM tenants WHERE id = 1"))
            assert conn.execute(text("SELECT COUNT(*) FROM usage_events")).scalar() == 0
        command.downgrade(config, "7d5f8d332b5b")
        referred = {f["referred_table"] for f in inspect(engine_).get_foreign_keys("usage_events")}
        assert referred == {"tenants", "features"}
        engine_.dispose()


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_app_webhook_secrets_stored_in_clear_are_sealed_and_open_again_going_down(
    engine: str, tmp_path: Path
) -> None:
    """The migration that seals endpoints' secrets: it needs BILLPLANE_SECRET_KEY when there are
    secrets to seal (and says so), seals them so that the sender opens them, and gives them
    back in clear going down."""
    plain, previous = "whsec_" + "c" * 32, "whsec_" + "p" * 32
    with fresh_database(engine, tmp_path) as plain_url:
        url = Settings(database_url=plain_url).sqlalchemy_url
        downgrade(url, "a7e3b9c41d52")
        engine_ = create_engine(url)
        with engine_.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO projects (id, key, name, origins, created_at)"
                    " VALUES (1, 'p', 'P', '[]', :t)"
                ),
                {"t": NOW},
            )
            conn.execute(
                text(
                    "INSERT INTO app_webhook_endpoints (public_id, project_id, url, events,"
                    " secret, previous_secret, status, created_at, updated_at) VALUES"
                    " ('ep_1', 1, 'https://a.test/h', '[]', :s, :p, 'enabled', :t, :t)"
                ),
                {"s": plain, "p": previous, "t": NOW},
            )

        with pytest.raises(SecretKeyNeeded, match="BILLPLANE_SECRET_KEY, which is not set"):
            upgrade(url)
        upgrade(url, secret_key=SECRET_KEY)

        with engine_.connect() as conn:
            sealed, sealed_previous = conn.execute(
                text("SELECT secret_sealed, previous_secret_sealed FROM app_webhook_endpoints")
            ).one()
        assert plain not in sealed
        assert unseal(sealed, SECRET_KEY, "ep_1") == plain
        assert unseal(sealed_previous, SECRET_KEY, "ep_1") == previous
        with pytest.raises(SecretKeyNeeded, match="does not open with this BILLPLANE_SECRET_KEY"):
            downgrade(url, "a7e3b9c41d52", secret_key="another-secret-key-" + "o" * 32)
        downgrade(url, "a7e3b9c41d52", secret_key=SECRET_KEY)
        with engine_.connect() as conn:
            back = conn.execute(
                text("SELECT secret, previous_secret FROM app_webhook_endpoints")
            ).one()
        engine_.dispose()
        assert tuple(back) == (plain, previous)


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_existing_plans_become_version_1_and_their_subscribers_keep_it(
    engine: str, tmp_path: Path
) -> None:
    """Plan versions arrive: each plan is its own version 1 (price, trial, grants), each tenant
    subscribed to a plan's price keeps version 1, a tenant without one keeps nothing (it follows
    the newest). Downgrading keeps the newest version's grants only."""
    with fresh_database(engine, tmp_path) as plain_url:
        url = Settings(database_url=plain_url).sqlalchemy_url
        config = alembic_config(url)
        command.downgrade(config, "93d9c0f7d4fe")
        engine_ = create_engine(url)
        with engine_.begin() as conn:
            for statement in (
                "INSERT INTO projects (id, key, name, origins, created_at)"
                " VALUES (1, 'p', 'P', '[]', :t)",
                "INSERT INTO features (id, project_id, key, name, type, created_at)"
                " VALUES (1, 1, 'f', 'F', 'limit', :t)",
                "INSERT INTO plans (id, project_id, key, name, stripe_price_id, trial_days, status,"
                " is_default, created_at, updated_at)"
                " VALUES (1, 1, 'pro', 'Pro', 'price_pro', 7, 'active', false, :t, :t)",
                'INSERT INTO plan_grants (plan_id, feature_id, enabled, "limit", reset)'
                " VALUES (1, 1, true, 100, 'month')",
                "INSERT INTO tenants (id, project_id, key, name, created_at, updated_at)"
                " VALUES (1, 1, 'acme', 'Acme', :t, :t), (2, 1, 'bare', 'Bare', :t, :t)",
                "INSERT INTO subscriptions (tenant_id, stripe_subscription_id, status,"
                " stripe_price_id, cancel_at_period_end, created_at, updated_at)"
                " VALUES (1, 'sub_1', 'active', 'price_pro', false, :t, :t)",
            ):
                conn.execute(text(statement), {"t": NOW})
        upgrade(url)
        with engine_.begin() as conn:
            versions = conn.execute(
                text("SELECT plan_id, version, stripe_price_id, trial_days FROM plan_versions")
            ).all()
            assert [tuple(v) for v in versions] == [(1, 1, "price_pro", 7)]
            pins = conn.execute(
                text("SELECT tenant_id, plan_id, version FROM tenant_plan_versions")
            )
            assert [tuple(p) for p in pins] == [(1, 1, 1)]
            grants = conn.execute(text('SELECT plan_id, version, "limit" FROM plan_grants'))
            assert [tuple(g) for g in grants] == [(1, 1, 100)]
            assert conn.execute(text("SELECT version FROM plans")).scalar() == 1
            conn.execute(
                text(
                    'INSERT INTO plan_grants (plan_id, version, feature_id, enabled, "limit")'
                    " VALUES (1, 2, 1, true, 10)"
                )
            )
            conn.execute(text("UPDATE plans SET version = 2"))
        command.downgrade(config, "93d9c0f7d4fe")
        with engine_.begin() as conn:
            kept = conn.execute(text('SELECT plan_id, "limit" FROM plan_grants'))
            assert [tuple(g) for g in kept] == [(1, 10)]
        engine_.dispose()


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_projects_get_a_catalogue_generation_each_and_going_down_removes_its_triggers(
    engine: str, tmp_path: Path
) -> None:
    """Existing projects get generations of their own (workers key their plans by them), a plan
    written afterwards changes its project's; downgraded, plans are written without them."""
    with fresh_database(engine, tmp_path) as plain_url:
        url = Settings(database_url=plain_url).sqlalchemy_url
        command.downgrade(alembic_config(url), "05323f7e0564")
        engine_ = create_engine(url)
        plan = (
            "INSERT INTO plans (project_id, key, name, trial_days, status, is_default, version,"
            " created_at, updated_at) VALUES (1, :key, 'Plan', 0, 'active', false, 1, :t, :t)"
        )
        with engine_.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO projects (id, key, name, origins, created_at)"
                    " VALUES (1, 'p', 'P', '[]', :t), (2, 'q', 'Q', '[]', :t)"
                ),
                {"t": NOW},
            )
        upgrade(url)
        generations = "SELECT catalogue_generation FROM projects ORDER BY id"
        with engine_.begin() as conn:
            first, second = conn.scalars(text(generations)).all()
            conn.execute(text(plan), {"key": "pro", "t": NOW})
            after = conn.scalars(text(generations)).all()
        assert first != second
        assert after[0] != first
        assert after[1] == second

        command.downgrade(alembic_config(url), "05323f7e0564")
        with engine_.begin() as conn:
            conn.execute(text(plan), {"key": "gold", "t": NOW})
            plans = conn.scalar(text("SELECT count(*) FROM plans"))
        engine_.dispose()
        assert plans == 2


LEDGER_ROW = (
    "INSERT INTO credit_ledger (tenant_id, pool_id, bucket_id, kind, part, amount,"
    " idempotency_key, created_at) VALUES (1, 1, 1, :kind, 0, :amount, :key, :t)"
)
GRANT = {"kind": "grant", "amount": 10, "key": "g1", "t": NOW}
USE = {"kind": "deduction", "amount": -1, "key": "u1", "t": NOW}


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_the_ledger_keeps_its_rows_and_a_movement_stays_once_both_ways(
    engine: str, tmp_path: Path
) -> None:
    """Up: the rows stay, a grant's row still lands once, a usage's rows are left to its event's
    key, and the bucket is a plain reference. Down: the unique key, the bucket's foreign key
    and its index are back."""
    with fresh_database(engine, tmp_path) as plain_url:
        url = Settings(database_url=plain_url).sqlalchemy_url
        command.downgrade(alembic_config(url), "ecf37c2bea85")
        engine_ = create_engine(url)
        with engine_.begin() as conn:
            for statement in (
                "INSERT INTO projects (id, key, name, origins, created_at)"
                " VALUES (1, 'p', 'P', '[]', :t)",
                "INSERT INTO tenants (id, project_id, key, status, created_at, updated_at)"
                " VALUES (1, 1, 't', 'active', :t, :t)",
                "INSERT INTO credit_pools (id, project_id, key, name, created_at)"
                " VALUES (1, 1, 'credits', 'Credits', :t)",
                "INSERT INTO credit_buckets (id, tenant_id, pool_id, source, source_key, granted,"
                " remaining, created_at) VALUES (1, 1, 1, 'grant', 'g1', 10, 9, :t)",
            ):
                conn.execute(text(statement), {"t": NOW})
            conn.execute(text(LEDGER_ROW), GRANT)
            conn.execute(text(LEDGER_ROW), USE)

        upgrade(url)
        assert "credit_buckets" not in _referred(engine_, "credit_ledger")
        indexes = {i["name"]: i for i in inspect(engine_).get_indexes("credit_ledger")}
        assert indexes["uq_credit_ledger_movement"]["unique"]
        assert "ix_credit_ledger_bucket_id" not in indexes
        with engine_.begin() as conn:
            assert conn.scalar(text("SELECT sum(amount) FROM credit_ledger")) == 9
            conn.execute(text(LEDGER_ROW), USE)  # the usage event's key keeps it once
        with pytest.raises(IntegrityError), engine_.begin() as conn:
            conn.execute(text(LEDGER_ROW), GRANT)

        with engine_.begin() as conn:  # the unique key coming back would refuse the second
            conn.execute(text("DELETE FROM credit_ledger WHERE id = 3"))
        command.downgrade(alembic_config(url), "ecf37c2bea85")
        assert "credit_buckets" in _referred(engine_, "credit_ledger")
        indexes = {i["name"]: i for i in inspect(engine_).get_indexes("credit_ledger")}
        assert "ix_credit_ledger_bucket_id" in indexes
        with pytest.raises(IntegrityError), engine_.begin() as conn:
            conn.execute(text(LEDGER_ROW), USE)
        with engine_.begin() as conn:
            assert conn.scalar(text("SELECT count(*) FROM credit_ledger")) == 2
        engine_.dispose()


def _referred(engine_: Engine, table: str) -> set[str]:
    return {fk["referred_table"] for fk in inspect(engine_).get_foreign_keys(table)}
