"""What the server can see of its own set-up: Stripe and webhook status, and the checklist.

Shared by the dashboard's overview and `GET /admin/api/status`.
"""
