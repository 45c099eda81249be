"""Projects (one per product) and their features."""
