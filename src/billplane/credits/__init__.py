"""Prepaid credits: pools features are priced in, buckets a tenant holds, and the ledger."""
