"""PostgreSQL's own `pgbench` running the shape of an enforced usage call, as the yardstick.

Add to the tenant's counter under the limit guard, claim the idempotency key, commit: the same
two statements billplane runs, for one hot tenant, at the same concurrency, on the same server
and database, with nothing of HTTP or Python in the way.
"""

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

# A feature of its own, so pgbench's rows never mix with the counts the bench audits.
FEATURE = "meter.05"

SCRIPT = """\\set n random(1, 2000000000)
BEGIN;
INSERT INTO usage_counters (tenant_id, feature_id, period_key, used)
  VALUES (:tenant, :feature, 'pgbench', 1)
  ON CONFLICT (tenant_id, feature_id, period_key) DO UPDATE
  SET used = usage_counters.used + excluded.used
  WHERE usage_counters.used + excluded.used <= 2000000000 RETURNING used;
INSERT INTO usage_events (tenant_id, feature_id, idempotency_key, quantity, period_key,
  occurred_at, recorded_at, response)
  VALUES (:tenant, :feature, 'pgbench-' || :client_id || '-' || :n, 1, 'pgbench', now(), now(),
  '{}') ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING id;
END;
"""


class PgbenchFailed(Exception):
    """pgbench is missing or did not report a rate."""


def run(
    url: str, *, tenant_id: int, feature_id: int, clients: int, threads: int, seconds: int
) -> float:
    """Transactions per second pgbench sustained."""
    found = shutil.which("pgbench")
    if found is None:
        raise PgbenchFailed("pgbench is not installed (Debian: postgresql-client)")
    with tempfile.TemporaryDirectory(prefix="billplane-pgbench-") as tmp:
        script = Path(tmp) / "usage.sql"
        script.write_text(SCRIPT)
        command = [
            found, "--no-vacuum", f"--client={clients}", f"--jobs={threads}",
            f"--time={seconds}", f"--file={script}",
            f"--define=tenant={tenant_id}", f"--define=feature={feature_id}", url,
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", done.stdout)
    if done.returncode != 0 or match is None:
        raise PgbenchFailed(f"pgbench failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return float(match.group(1))
