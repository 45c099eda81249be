"""Usage is never dropped, on either engine and by either client: with billplane down, each
client's process records 100 actions and exits; billplane comes up on the database, a new process
of each client starts, and each counter then reads exactly 100 — nothing lost while billplane was
away, nothing counted twice by the replay.

The project is seeded straight into the database while no server runs (one server start per
engine instead of two, for the suite's time): to the clients, billplane is as down as a stopped
one. tests/clients/test_outbox.py covers a server that answered, went away and came back.
"""

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

import factories
from billplane.db import Database
from billplane.settings import Settings
from conftest import ADMIN_TOKEN, fresh_database
from servers import free_port, running_server

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "clients" / "js" / "billplane.mjs"
ACTIONS = 100

# A client app's process, in Python: `record` makes 100 actions (the first 20 sent twice, as an
# app retrying with its own keys would) while billplane is away; `resume` is the app started
# again, whose first check replays the outbox. Both print what they saw as JSON.
PYTHON_APP = """
import json, sys
from billplane_client import Billplane

url, token, outbox, step = sys.argv[1:]
with Billplane(url, token, outbox=outbox, retries=0, cache_ttl=0) as bp:
    if step == "record":
        answers = [bp.record_usage("acme", "ai.tokens", idempotency_key=f"py-{n}")
                   for n in [*range(100), *range(20)]]
        print(json.dumps({"queued": sum(a.queued for a in answers)}))
    else:
        check = bp.check("acme", "ai.tokens")
        print(json.dumps({"used": check.used, "pending": bp.flush().pending}))
"""

# The same app in JavaScript, with a FileStore; half its keys are the client's own (bpc-...).
NODE_APP = """
const { Billplane, FileStore } = await import(process.env.BILLPLANE_MODULE);
const [url, token, outbox, step] = process.argv.slice(-4);
const bp = new Billplane({ url, token, outbox: new FileStore(outbox), retries: 0, cacheTtlMs: 0 });
if (step === "record") {
  let queued = 0;
  for (let n = 0; n < 120; n += 1) {
    const idempotencyKey = n < 50 ? `js-${n}` : n < 100 ? undefined : `js-${n - 100}`;
    const answer = await bp.recordUsage({ tenant: "globex", feature: "ai.tokens", idempotencyKey });
    queued += answer.queued ? 1 : 0;
  }
  console.log(JSON.stringify({ queued }));
} else {
  const check = await bp.check({ tenant: "globex", feature: "ai.tokens" });
  console.log(JSON.stringify({ used: check.used, pending: (await bp.flush()).pending }));
}
"""


def _apps(url: str, token: str, tmp_path: Path, step: str) -> dict[str, Any]:
    """Both apps' processes for `step`, side by side; what each printed."""
    node = shutil.which("node")
    assert node, "node (v18+) is needed to test the JS client"
    argv = {
        "python": [sys.executable, "-c", PYTHON_APP],
        "node": [node, "--input-type=module", "-e", NODE_APP, "--"],
    }
    outbox = {"python": tmp_path / "outbox.sqlite3", "node": tmp_path / "outbox.jsonl"}
    env = {**os.environ, "BILLPLANE_MODULE": MODULE.as_uri()}
    running = {
        name: subprocess.Popen(
            [*command, url, token, str(outbox[name]), step],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, command in argv.items()
    }
    printed = {}
    for name, process in running.items():
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, f"{name} {step}: {err}"
        printed[name] = json.loads(out.strip().splitlines()[-1])
    return printed


def _seeded(database: str) -> str:
    """The `realtyos` project (tenants `acme` and `globex`), committed; its token."""
    settings = Settings(database_url=database, billplane_admin_token=ADMIN_TOKEN)
    db = Database(settings.sqlalchemy_url)
    now = datetime.now(UTC)
    try:
        with db.session_scope(write=True) as session:
            token = factories.realtyos(session, settings, now)
            factories.tenant(session, now, "realtyos", "globex")
    finally:
        db.dispose()
    return token


def _used(url: str, token: str, tenant: str) -> int | None:
    answer = httpx.get(
        f"{url}/v1/tenants/{tenant}/entitlements",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    answer.raise_for_status()
    used: int | None = next(
        f["used"] for f in answer.json()["features"] if f["feature"] == "ai.tokens"
    )
    return used


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_usage_recorded_while_billplane_is_down_counts_exactly_once_after_restarts(
    engine: str, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with fresh_database(engine, tmp_path) as database:
        token = _seeded(database)
        # billplane is down: each app records its actions, then its process ends.
        recorded = _apps(url, token, tmp_path, "record")
        with running_server(database, ADMIN_TOKEN, port=int(url.rsplit(":", 1)[1])):
            resumed = _apps(url, token, tmp_path, "resume")
            counters = {"python": _used(url, token, "acme"), "node": _used(url, token, "globex")}

    assert recorded == {"python": {"queued": 120}, "node": {"queued": 120}}
    assert resumed == {"python": {"used": 100, "pending": 0}, "node": {"used": 100, "pending": 0}}
    assert counters == {"python": ACTIONS, "node": ACTIONS}
