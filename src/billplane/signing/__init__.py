"""Signed snapshots of entitlements: the Ed25519 keys that sign them, sealed at rest."""
