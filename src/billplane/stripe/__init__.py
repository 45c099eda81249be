"""Stripe, behind one small module (`gateway`): the rest of billplane speaks in facts."""
