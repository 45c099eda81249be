"""Plans: a Stripe price mapped to features and limits."""
