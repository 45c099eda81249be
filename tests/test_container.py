"""The container, as an operator runs it: the image the Dockerfile builds serves billplane on
SQLite (its default, on the image's volume) and on the host's PostgreSQL, migrating each at start;
it is ready on /readyz, healthy by its own HEALTHCHECK, runs as a user without privileges, answers
real checks and never logs the admin token.

No image registry is reachable here: the image is built on a Debian base made with debootstrap
(the `BASE` build argument) from wheels downloaded on the host (`WHEELHOUSE`), with no network
at all (`--network=none`); tests/containers.py makes both, once per machine.
"""

import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import psycopg
import pytest

from conftest import ADMIN_TOKEN, PG_URL, postgres_answers
from containers import (
    BASE_IMAGE,
    DEBOOTSTRAP,
    DOCKER,
    DOCKERD,
    build_image,
    docker,
    docker_environment,
    docker_logs,
    ensure_base_image,
    has_image,
    image_context,
    start_engine,
    stop_engine,
)
from races import seed
from servers import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("container")]

needs_docker = pytest.mark.skipif(
    not (DOCKER and DOCKERD), reason="needs Debian's docker.io (apt-get install docker.io)"
)

DATABASES = ["sqlite", "postgresql"]


@dataclass
class Served:
    container: str  # the container's id
    url: str  # the server's base URL, on the host's network


@pytest.fixture(scope="module")
def engine() -> Iterator[dict[str, str]]:
    """The environment for `docker` commands; dockerd runs until the module ends if it was started
    for it."""
    started = start_engine()
    try:
        yield docker_environment()
    finally:
        if started is not None:
            stop_engine(started)


@pytest.fixture(scope="module")
def image(engine: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """billplane's image, built from this checkout as the Dockerfile says, offline."""
    if not DEBOOTSTRAP and not has_image(BASE_IMAGE, engine):
        pytest.skip("needs Debian's debootstrap for the base image (apt-get install debootstrap)")
    ensure_base_image(engine)
    # A tag of this run's own; BuildKit keeps the layers for the next run once it is removed.
    tag = f"billplane-test:{secrets.token_hex(6)}"
    build_image(image_context(tmp_path_factory.mktemp("image")), tag, engine)
    try:
        yield tag
    finally:
        docker("image", "rm", tag, env=engine)


@pytest.fixture(scope="module")
def servers(engine: dict[str, str], image: str) -> Iterator[dict[str, Served]]:
    """A container of the image per database, started side by side: SQLite as the image has it
    (no DATABASE_URL), and a new database on the host's PostgreSQL, migrated by neither the test
    nor anyone but the container."""
    databases: dict[str, str | None] = {"sqlite": None}
    if postgres_answers():
        databases["postgresql"] = f"billplane_container_{secrets.token_hex(6)}"
    containers: dict[str, Served] = {}
    try:
        for kind, database in databases.items():
            if database is not None:
                with psycopg.connect(PG_URL, autocommit=True) as admin:
                    admin.execute(f'CREATE DATABASE "{database}"')
            containers[kind] = _run(image, engine, database)
        for served in containers.values():
            _wait_ready(served, engine)
        yield containers
    finally:
        if containers:
            ids = [served.container for served in containers.values()]
            docker("rm", "--force", "--volumes", *ids, env=engine, check=False)
        if databases.get("postgresql"):
            with psycopg.connect(PG_URL, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{databases["postgresql"]}" WITH (FORCE)')


def _run(image: str, engine: dict[str, str], database: str | None) -> Served:
    port = free_port()
    # Secrets reach the container through `docker`'s environment (`--env NAME`), never through
    # its command line.
    env = {**engine, "BILLPLANE_ADMIN_TOKEN": ADMIN_TOKEN}
    options = [
        "--detach",
        "--network=host",  # the host's PostgreSQL listens on its loopback only
        "--health-interval=1s",  # the image's check, asked sooner than every 10 s
        f"--env=BILLPLANE_PORT={port}",
        "--env=BILLPLANE_ADMIN_TOKEN",
    ]
    if database is not None:
        env["DATABASE_URL"] = f"{PG_URL.rsplit('/', 1)[0]}/{database}"
        options.append("--env=DATABASE_URL")
    container = docker("run", *options, image, env=env).strip()
    return Served(container, f"http://127.0.0.1:{port}")


def _wait_ready(served: Served, engine: dict[str, str]) -> None:
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{served.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        running = docker("inspect", "--format={{.State.Running}}", served.container, env=engine)
        if running.strip() != "true" or time.monotonic() > deadline:
            logs = docker_logs(served.container, env=engine)
            pytest.fail(f"the container never became ready (running: {running.strip()}):\n{logs}")
        time.sleep(0.2)


def _served(servers: dict[str, Served], database: str) -> Served:
    if database not in servers:
        pytest.skip(f"PostgreSQL at {PG_URL} does not answer")
    return servers[database]


@needs_docker
@pytest.mark.parametrize("database", DATABASES)
def test_the_container_migrates_its_database_at_start_and_is_ready(
    servers: dict[str, Served], database: str
) -> None:
    ready = httpx.get(f"{_served(servers, database).url}/readyz")
    assert ready.status_code == 200, ready.text


@needs_docker
@pytest.mark.parametrize("database", DATABASES)
def test_the_container_answers_checks_as_its_plan_says(
    servers: dict[str, Served], database: str
) -> None:
    url = _served(servers, database).url
    token, tenant = seed(url, limit=1)
    check = {"tenant": tenant, "feature": "reports"}
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client:
        first = client.post("/v1/check", json=check)
        used = client.post("/v1/usage", json={**check, "idempotency_key": "k1", "enforce": True})
        second = client.post("/v1/check", json=check)

    assert first.status_code == 200, first.text
    assert first.json()["allowed"] is True
    assert used.status_code == 201, used.text
    assert second.status_code == 200, second.text
    assert second.json()["allowed"] is False


@needs_docker
@pytest.mark.parametrize("database", DATABASES)
def test_the_image_healthcheck_finds_the_container_healthy(
    servers: dict[str, Served], engine: dict[str, str], database: str
) -> None:
    container = _served(servers, database).container
    deadline = time.monotonic() + 30
    while (health := _health(container, engine)) != "healthy" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert health == "healthy"


def _health(container: str, engine: dict[str, str]) -> str:
    return docker("inspect", "--format={{.State.Health.Status}}", container, env=engine).strip()


@needs_docker
@pytest.mark.parametrize("database", DATABASES)
def test_the_server_runs_as_a_user_without_privileges(
    servers: dict[str, Served], engine: dict[str, str], database: str
) -> None:
    container = _served(servers, database).container
    assert docker("exec", container, "id", "-u", env=engine).strip() not in ("", "0")
    # Every process of the container, the server itself included, not only what `exec` starts.
    uids = _uids(container, engine)
    assert uids
    assert not {"0", "root"} & set(uids), uids


def _uids(container: str, engine: dict[str, str]) -> list[str]:
    """The uid of each process of the container."""
    listed = docker("top", container, "-eo", "pid,uid", env=engine)
    return [line.split()[1] for line in listed.splitlines()[1:]]


@needs_docker
@pytest.mark.parametrize("database", DATABASES)
def test_the_container_logs_never_show_the_admin_token(
    servers: dict[str, Served], engine: dict[str, str], database: str
) -> None:
    container = _served(servers, database).container
    logs = docker_logs(container, env=engine)
    assert "billplane: dashboard" in logs  # the start was logged
    assert ADMIN_TOKEN not in logs


@needs_docker
def test_the_image_is_configured_by_the_environment_alone(
    image: str, engine: dict[str, str]
) -> None:
    [inspected] = json.loads(docker("image", "inspect", image, env=engine))
    config = inspected["Config"]
    assert config["User"] not in ("", "0", "root")
    assert "8000/tcp" in config["ExposedPorts"]
    assert any("/readyz" in word for word in config["Healthcheck"]["Test"])
    assert config["Entrypoint"] == ["billplane"]
    assert config["Cmd"][:1] == ["serve"]
    assert "--migrate" in config["Cmd"]
    # No setting, let alone a secret, is baked in: each comes from `docker run`'s environment.
    names = {entry.split("=", 1)[0] for entry in config["Env"]}
    assert not {n for n in names if n.startswith(("BILLPLANE_", "STRIPE_", "DATABASE_"))}
