"""Webhooks to client apps (the Standard Webhooks spec): endpoints, the outbox of events written
with the changes they tell of, and the sender that delivers them (docs/architecture.md)."""
