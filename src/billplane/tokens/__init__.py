"""API tokens for client apps: project-wide or scoped to one tenant."""
