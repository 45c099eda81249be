"""Usage: recording what tenants consumed, exactly once and never over a limit."""
