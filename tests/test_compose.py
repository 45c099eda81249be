"""compose.yaml, as an operator reads it: billplane built from the Dockerfile beside it, started
once PostgreSQL is healthy, healthy itself by /readyz, and no secret written in it (compose
refuses to start without them). No compose plugin is installed here, and no image registry is in
reach to pull postgres:16 from: the file is read, not run; tests/test_container.py runs the
image.
"""

from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # PyYAML, which uvicorn[standard] brings

ROOT = Path(__file__).resolve().parent.parent


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())  # type: ignore[no-any-return]


def test_compose_builds_billplane_from_the_dockerfile_beside_a_healthy_postgres() -> None:
    services = _compose()["services"]
    billplane, postgres = services["billplane"], services["postgres"]

    assert billplane["build"] == "."
    assert (ROOT / "Dockerfile").is_file()
    assert billplane["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert "/readyz" in " ".join(billplane["healthcheck"]["test"])
    assert postgres["image"].startswith("postgres:16")
    assert "pg_isready" in postgres["healthcheck"]["test"]
    assert billplane["environment"]["DATABASE_URL"].endswith("@postgres:5432/billplane")


def test_compose_holds_no_secret_and_refuses_to_start_without_them() -> None:
    services = _compose()["services"]
    required = {
        ("billplane", "BILLPLANE_ADMIN_TOKEN"): "BILLPLANE_ADMIN_TOKEN",
        ("billplane", "DATABASE_URL"): "POSTGRES_PASSWORD",
        ("postgres", "POSTGRES_PASSWORD"): "POSTGRES_PASSWORD",
    }
    for (service, name), variable in required.items():
        # `${NAME:?message}`: compose stops with the message when NAME is unset or empty.
        assert f"${{{variable}:?" in services[service]["environment"][name], (service, name)
    for service in services.values():
        for name, value in (service.get("environment") or {}).items():
            if any(word in name for word in ("TOKEN", "SECRET", "PASSWORD", "KEY")):
                assert value is None or value.startswith("${"), name
