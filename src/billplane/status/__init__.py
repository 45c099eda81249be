"""What the server can see of its own set-up: Stripe and webhook status, and the checklist.

`probes` is the one place that asks: the dashboard, `GET /admin/api/status`,
`GET /admin/api/stripe/check` and `billplane stripe check` all show what it answers.
"""
