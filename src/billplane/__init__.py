"""billplane: a self-hosted billing control plane between Stripe and many client apps."""

__version__ = "0.1.0"
