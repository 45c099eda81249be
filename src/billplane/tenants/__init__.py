"""Tenants: the billing identity of one client or copied app instance."""
