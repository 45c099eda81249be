"""Signed entitlements snapshots: what lets `check()` answer while billplane cannot be reached.

billplane signs a tenant's entitlements (a compact JWS, Ed25519). The client verifies each one it
fetches — the signature and its `kid` against billplane's JWKS, `aud` (the project it was given),
`sub` (the tenant asked for), `exp` — keeps the latest valid one per tenant in memory, and while
billplane is away answers from it until it expires, counting the usage recorded since, so a copy
cut off from billplane never passes the last limit it knew.

Needs the `offline` extra (PyJWT with `cryptography`), imported only when `project=` is given.
"""

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from billplane_client.errors import BillplaneError
from billplane_client.policy import check_from_entitlements
from billplane_client.types import Check, Entitlements

ALGORITHM = "EdDSA"
# A kid billplane's JWKS does not hold sends the client back to it at most this often (a
# rotated key is learnt within seconds; a stream of forged kids costs one fetch per period).
JWKS_REFRESH = 10.0

WallClock = Callable[[], float]


class SnapshotRefused(BillplaneError):
    """billplane's signed snapshot failed verification; it is never used. `code` says why:
    `snapshot_malformed`, `snapshot_unknown_kid`, `snapshot_bad_signature`,
    `snapshot_wrong_audience`, `snapshot_wrong_tenant` or `snapshot_expired`."""


@dataclass(frozen=True)
class Snapshot:
    """A verified snapshot: the entitlements it carries, valid until `expires_at` (epoch)."""

    entitlements: Entitlements
    issued_at: float
    expires_at: float
    kid: str


class Verifier:
    """Checks snapshots for one project against the keys of billplane's JWKS."""

    def __init__(self, project: str) -> None:
        try:
            import jwt  # the `offline` extra: imported only when asked for
        except ImportError as missing:
            raise ImportError(
                "project= turns on billplane's signed snapshots, which need PyJWT and "
                "cryptography: pip install 'billplane-client[offline]'"
            ) from missing
        self._jwt = jwt
        self.project = project
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None

    def kid_of(self, token: str) -> str:
        """The key id a snapshot names (before it is trusted: only to pick the key)."""
        try:
            header = self._jwt.get_unverified_header(token)
        except self._jwt.exceptions.PyJWTError as error:
            raise _refused("snapshot_malformed", f"not a compact JWS ({error})") from error
        kid = header.get("kid")
        if header.get("alg") != ALGORITHM or not isinstance(kid, str):
            raise _refused("snapshot_malformed", f"header {header!r}: EdDSA with a kid expected")
        return kid

    def knows(self, kid: str) -> bool:
        return kid in self._keys

    def may_refresh(self, now: float) -> bool:
        """Whether the JWKS may be fetched again (never yet, or not for `JWKS_REFRESH` s)."""
        return self._fetched_at is None or now - self._fetched_at >= JWKS_REFRESH

    def load(self, jwks: Mapping[str, Any], now: float) -> None:
        """Billplane's JWKS, as fetched: its Ed25519 signing keys replace those known."""
        keys: dict[str, Any] = {}
        for jwk in jwks.get("keys", []):
            if not isinstance(jwk, Mapping) or jwk.get("kty") != "OKP":
                continue
            if jwk.get("crv") != "Ed25519" or jwk.get("use", "sig") != "sig":
                continue
            try:
                keys[str(jwk["kid"])] = self._jwt.PyJWK(dict(jwk), algorithm=ALGORITHM).key
            except (KeyError, self._jwt.exceptions.PyJWTError):
                continue
        self._keys = keys
        self._fetched_at = now

    def verify(self, token: str, tenant: str, now: float) -> Snapshot:
        """The snapshot, if its kid, signature, `aud`, `sub` and `exp` hold; else raises
        `SnapshotRefused` with the first that does not."""
        kid = self.kid_of(token)
        key = self._keys.get(kid)
        if key is None:
            raise _refused("snapshot_unknown_kid", f"kid {kid!r} is not in billplane's JWKS")
        jwt, errors = self._jwt, self._jwt.exceptions
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.project,
                subject=tenant,
                # `exp` is checked below against the client's clock; a future `iat` is a clock
                # running behind billplane's, not a forgery.
                options={
                    "require": ["exp", "iat", "aud", "sub"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
        except errors.InvalidSignatureError as error:
            raise _refused("snapshot_bad_signature", "its signature does not verify") from error
        except errors.InvalidAudienceError as error:
            raise _refused(
                "snapshot_wrong_audience", f"it is not for project {self.project!r}"
            ) from error
        except errors.InvalidSubjectError as error:
            raise _refused("snapshot_wrong_tenant", f"it is not tenant {tenant!r}'s") from error
        except errors.PyJWTError as error:
            raise _refused("snapshot_malformed", str(error)) from error
        if claims.get("tenant") != tenant:
            raise _refused("snapshot_wrong_tenant", f"it is not tenant {tenant!r}'s")
        try:
            snapshot = Snapshot(
                Entitlements.from_json(claims), float(claims["iat"]), float(claims["exp"]), kid
            )
        except (KeyError, TypeError, ValueError) as error:
            raise _refused("snapshot_malformed", f"its claims do not read ({error})") from error
        if snapshot.expires_at <= now:
            raise _refused("snapshot_expired", f"it expired at {snapshot.expires_at:.0f}")
        return snapshot


def _refused(code: str, why: str) -> SnapshotRefused:
    return SnapshotRefused(code, f"billplane's signed snapshot is refused: {why}")


@dataclass
class _Held:
    snapshot: Snapshot
    # Usage billplane counted after the snapshot was cut (recorded through this client, or
    # replayed from its outbox), by feature: the snapshot does not show it.
    since: dict[str, int] = field(default_factory=dict)


class Snapshots:
    """The latest verified snapshot of each tenant, and what was used since it was cut."""

    def __init__(self, verifier: Verifier, wall_clock: WallClock = time.time) -> None:
        self.verifier = verifier
        self.wall_clock = wall_clock
        self._held: dict[str, _Held] = {}
        self._generations: dict[str, int] = {}
        self._lock = threading.Lock()

    def generation(self, tenant: str) -> int:
        with self._lock:
            return self._generations.get(tenant, 0)

    def put(self, snapshot: Snapshot, generation: int) -> None:
        """Hold a snapshot fetched when the tenant's generation was `generation`. Usage counted
        while it was being fetched may or may not be in it: then what was counted since the
        older one is kept (counted twice, maybe, rather than not at all)."""
        tenant = snapshot.entitlements.tenant
        with self._lock:
            held = self._held.get(tenant)
            if held is not None and held.snapshot.issued_at > snapshot.issued_at:
                return  # an older answer that arrived late
            unchanged = generation == self._generations.get(tenant, 0)
            since = {} if unchanged or held is None else held.since
            self._held[tenant] = _Held(snapshot, since)

    def counted(self, tenant: str, feature: str, quantity: int) -> None:
        """billplane counted usage the held snapshot does not show."""
        with self._lock:
            self._generations[tenant] = self._generations.get(tenant, 0) + 1
            held = self._held.get(tenant)
            if held is not None:
                held.since[feature] = held.since.get(feature, 0) + quantity

    def answer(self, tenant: str, feature: str, quantity: int, queued: int) -> Check | None:
        """The check's answer from the tenant's snapshot, with what was counted since and what
        waits in the outbox (`queued`) added to its usage; None without a valid snapshot (none,
        expired, or the feature's period over: its counter started again)."""
        now = self.wall_clock()
        with self._lock:
            held = self._held.get(tenant)
            if held is None or held.snapshot.expires_at <= now:
                return None
            since = held.since.get(feature, 0)
        entitlements = held.snapshot.entitlements
        entry = entitlements.features.get(feature)
        if entry is not None and entry.resets_at is not None and entry.resets_at.timestamp() <= now:
            return None
        return check_from_entitlements(
            entitlements, feature, quantity, from_cache=True, local=since + queued, offline=True
        )
