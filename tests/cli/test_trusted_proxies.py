"""`billplane serve` believes X-Forwarded-For only from BILLPLANE_TRUSTED_PROXIES: otherwise a
local caller could name any address it likes, and the throttle on admin tokens would count each
made-up address apart."""

from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from billplane.cli import app as cli
from conftest import ADMIN_TOKEN, fresh_database
from servers import running_server

RIGHT = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
WRONG = {"Authorization": "Bearer " + "w" * 32}


def _guess_ten_times_from_made_up_addresses(base_url: str) -> None:
    for n in range(10):
        forwarded = {"X-Forwarded-For": f"198.51.100.{n}"}
        answer = httpx.get(f"{base_url}/admin/api/projects", headers=WRONG | forwarded)
        assert answer.status_code == 401, answer.text


@pytest.mark.e2e
def test_a_local_peers_x_forwarded_for_is_ignored_by_default(tmp_path: Path) -> None:
    with (
        fresh_database("sqlite", tmp_path) as url,
        running_server(url, ADMIN_TOKEN) as base_url,
    ):
        _guess_ten_times_from_made_up_addresses(base_url)
        # One client, whatever it says: refused, even with the right token.
        forwarded = {"X-Forwarded-For": "203.0.113.7"}
        answer = httpx.get(f"{base_url}/admin/api/projects", headers=RIGHT | forwarded)
    assert answer.status_code == 429
    assert int(answer.headers["retry-after"]) > 0


@pytest.mark.e2e
def test_a_trusted_proxys_x_forwarded_for_names_the_client(tmp_path: Path) -> None:
    trusted = {"BILLPLANE_TRUSTED_PROXIES": "127.0.0.1,::1"}
    with (
        fresh_database("sqlite", tmp_path) as url,
        running_server(url, ADMIN_TOKEN, extra_env=trusted) as base_url,
    ):
        _guess_ten_times_from_made_up_addresses(base_url)
        for _ in range(10):
            guessing = {"X-Forwarded-For": "203.0.113.7"}
            httpx.get(f"{base_url}/admin/api/projects", headers=WRONG | guessing)
        # The client that guessed ten times waits; the ten with one guess each do not.
        throttled = httpx.get(f"{base_url}/admin/api/projects", headers=RIGHT | guessing)
        others = [
            httpx.get(
                f"{base_url}/admin/api/projects",
                headers=RIGHT | {"X-Forwarded-For": f"198.51.100.{n}"},
            ).status_code
            for n in range(10)
        ]
    assert throttled.status_code == 429
    assert others == [200] * 10


def test_a_trusted_proxy_must_be_an_address_or_a_network() -> None:
    result = CliRunner().invoke(
        cli, ["project", "list"], env={"BILLPLANE_TRUSTED_PROXIES": "10.0.0.1,proxy.local"}
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "billplane cannot start: BILLPLANE_TRUSTED_PROXIES must be * alone or list IP addresses "
        "or networks (e.g. 10.0.0.1,10.1.0.0/16), not 'proxy.local'."
    )
