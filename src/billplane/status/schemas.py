"""The answer of `GET /admin/api/status` (the Stripe report's is `probes.StripeReport`)."""

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
