"""The answers of `GET /admin/api/status` and `GET /admin/api/stripe/check`."""

from typing import Any

from pydantic import BaseModel, ConfigDict

from billplane.status.checklist import State


class StatusOut(BaseModel):
    label: str  # e.g. "connected — test mode", "waiting for first event"
    ok: bool
    detail: str | None


class ChecklistItemOut(BaseModel):
    key: str
    group: str
    title: str
    state: State
    done: bool
    action: str


class SetupStatusOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "stripe": {"label": "connected — test mode", "ok": True, "detail": None},
                    "webhook": {"label": "waiting for first event", "ok": False, "detail": None},
                    "checklist": [
                        {
                            "key": "project",
                            "group": "Answer your first client app",
                            "title": "Create a project",
                            "state": "done",
                            "done": True,
                            "action": "Create a project.",
                        }
                    ],
                    "next": None,
                }
            ]
        }
    )

    stripe: StatusOut
    webhook: StatusOut
    checklist: list[ChecklistItemOut]
    next: ChecklistItemOut | None


class KeyReport(BaseModel):
    valid: bool
    error: str | None


class PlanPriceReport(BaseModel):
    project: str
    plan: str
    price: str
    stripe: dict[str, Any]  # the plan's stored price verdict (see `plans.prices.verdict`)


class WebhookReport(BaseModel):
    url: str
    secret_set: bool
    registered: bool | None
    enabled: bool | None
    missing_events: list[str] | None
    endpoint: str | None = None  # Stripe's id of the endpoint that sends here
    error: str | None = None  # why Stripe could not be asked


class StripeReportOut(BaseModel):
    """What billplane can see of Stripe (`billplane stripe check` prints the same)."""

    configured: bool
    mode: str | None  # test | live
    key: KeyReport
    plans: list[PlanPriceReport]
    webhook: WebhookReport
    ok: bool
