"""Every shell block of README.md and examples/*/README.md, run as pasted against real servers.

The blocks run in order in one bash, as a newcomer pastes them into one terminal (the README's
first minute defines `$ADMIN` and `$PROJECT_TOKEN`, the example's blocks use them), from a
directory that holds what `make run` leaves: `.env` with the admin token and `.venv`. Only three
things differ from a paste: the ports (8000 and 8001 may be taken here), the placeholder price
`price_...`, and a block's server (`uvicorn ...` in the foreground) starting in the background.
A `curl` that gets anything but a 2xx fails the run, with the answer.
"""

import os
import re
import subprocess
from pathlib import Path

import httpx
import pytest

from conftest import ADMIN_TOKEN
from servers import free_port, running_server

ROOT = Path(__file__).resolve().parent.parent
READMES = [ROOT / "README.md", *sorted((ROOT / "examples").glob("*/README.md"))]
# The README's opening block is `make run` / `make test` themselves: test_readme.py checks them.
LAUNCHER = "make run"

# Every curl of the blocks, as pasted, but failing on an HTTP error with the answer on stderr.
CURL_THAT_FAILS = r"""
curl() {
  local out code
  out=$(command curl -w '\n%{http_code}' "$@") || return $?
  code=${out##*$'\n'}
  printf '%s\n' "${out%$'\n'*}"
  if [[ $code != 2* ]]; then echo "curl $*: HTTP $code" >&2; return 22; fi
}
"""
SERVER_LINE = re.compile(r"^(\S*uvicorn .*)$", re.MULTILINE)


def shell_blocks(path: Path) -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```", path.read_text(), re.MULTILINE | re.DOTALL)


def test_the_readmes_have_the_blocks_this_test_runs() -> None:
    blocks = {path.relative_to(ROOT).as_posix(): shell_blocks(path) for path in READMES}
    assert LAUNCHER in blocks["README.md"][0]
    assert any("/v1/check" in block for block in blocks["README.md"])
    assert any(SERVER_LINE.search(block) for block in blocks["examples/realtyos/README.md"])


# Servers a block starts (in the foreground, as pasted) run in the background here, and stop
# with the script whatever happens.
PRELUDE = r"""
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
wait_for() {
  for _ in $(seq 150); do command curl -s "localhost:$1" >/dev/null && return; sleep 0.1; done
  echo "nothing answers on port $1" >&2; cat app.log >&2; return 1
}
"""


def script_of(blocks: list[str], api_port: int, app_port: int) -> str:
    lines = [PRELUDE, CURL_THAT_FAILS, "set -euo pipefail"]
    for block in blocks:
        if LAUNCHER in block:
            continue
        block = block.replace("price_...", "price_pro")
        block = SERVER_LINE.sub(rf"\1 >app.log 2>&1 &\nwait_for {app_port}", block)
        block = re.sub(r"\b8000\b", str(api_port), block)
        lines.append(re.sub(r"\b8001\b", str(app_port), block))
    return "\n".join(lines)


@pytest.mark.e2e
def test_every_readme_shell_block_works_as_pasted(tmp_path: Path) -> None:
    api_port, app_port = free_port(), free_port()
    script = script_of([b for path in READMES for b in shell_blocks(path)], api_port, app_port)
    # What `make run` leaves beside the README's commands.
    (tmp_path / ".env").write_text(f"BILLPLANE_ADMIN_TOKEN={ADMIN_TOKEN}\n")
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    database = f"sqlite:///{tmp_path / 'billplane.db'}"
    billplane = str(ROOT / ".venv" / "bin" / "billplane")
    env = {**os.environ, "DATABASE_URL": database}
    subprocess.run([billplane, "db", "upgrade"], env=env, check=True, capture_output=True)
    with running_server(database, ADMIN_TOKEN, port=api_port) as url:
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=tmp_path,
            env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, output
        # The blocks did what they say: the check allowed, and both the README's usage call
        # (listing-1) and the example app's published listing were counted.
        assert '"allowed":true' in output.replace(" ", ""), output
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        acme = httpx.get(f"{url}/admin/api/projects/realtyos/tenants/acme", headers=admin).json()
        used = {e["feature"]: e.get("used") for e in acme["entitlements"]}
        assert used["listings.publish"] == 2, acme
