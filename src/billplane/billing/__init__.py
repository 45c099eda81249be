"""Billing: checkout, portal, and tenants' subscriptions and invoices kept in step with Stripe."""
