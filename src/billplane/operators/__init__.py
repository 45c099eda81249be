"""Operators: the holders of BILLPLANE_ADMIN_TOKEN, their dashboard sessions, and the throttle on
guessing that token."""
