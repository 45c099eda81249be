"""The operator dashboard: server-rendered pages on the same services as the admin API.

A sub-app mounted at `/` with its own login, CSRF-checked forms, HTML error pages and static files.
Nothing imports from here but `billplane.app`, which mounts it.
"""
