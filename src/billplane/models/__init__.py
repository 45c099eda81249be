"""All tables; importing this module registers every model on `Base.metadata`."""

from billplane.models.appwebhook import (
    AppDelivery,
    AppDeliveryAttempt,
    AppEvent,
    AppEventSequence,
    AppWebhookEndpoint,
)
from billplane.models.base import Base
from billplane.models.credits import (
    CreditBucket,
    CreditCost,
    CreditEntry,
    CreditPack,
    CreditPool,
    CreditReservation,
    CreditTopup,
    PlanAllowance,
)
from billplane.models.invoice import Invoice
from billplane.models.operator import AdminTokenFailure, OneTimeSecret, OperatorSession
from billplane.models.plan import Plan, PlanGrant, PlanVersion
from billplane.models.project import Feature, Project
from billplane.models.records import AuditEntry, StripeEvent
from billplane.models.refusal import DailyChecks, Refusal
from billplane.models.signing_key import SigningKey
from billplane.models.tenant import Subscription, Tenant, TenantOverride, TenantPlanVersion
from billplane.models.token import Token
from billplane.models.usage import UsageCounter, UsageEvent

__all__ = [
    "AdminTokenFailure",
    "AppDelivery",
    "AppDeliveryAttempt",
    "AppEvent",
    "AppEventSequence",
    "AppWebhookEndpoint",
    "AuditEntry",
    "Base",
    "CreditBucket",
    "CreditCost",
    "CreditEntry",
    "CreditPack",
    "CreditPool",
    "CreditReservation",
    "CreditTopup",
    "DailyChecks",
    "Feature",
    "Invoice",
    "OneTimeSecret",
    "OperatorSession",
    "Plan",
    "PlanAllowance",
    "PlanGrant",
    "PlanVersion",
    "Project",
    "Refusal",
    "SigningKey",
    "StripeEvent",
    "Subscription",
    "Tenant",
    "TenantOverride",
    "TenantPlanVersion",
    "Token",
    "UsageCounter",
    "UsageEvent",
]
