"""The demo's `realtyos` catalogue: four features of each type, a free and a pro plan, and
tenants whose usage sits well under, near, at and over their limits."""

from dataclasses import dataclass, field
from typing import Any

from billplane.schemas import FeatureType

PROJECT = "realtyos"
# Not a Stripe price: a plan with a price is what makes `pro` a paid plan, and billplane shows
# (on the plan and in the checklist) that Stripe does not know this one until it is replaced.
PLACEHOLDER_PRICE = "price_demo_pro"
# The example app's address (examples/realtyos), so its checkout may return there.
ORIGINS = ["http://127.0.0.1:8001"]

# key, type, name, unit: four of each type billplane knows.
FEATURES: list[tuple[str, FeatureType, str, str | None]] = [
    ("exports", "boolean", "CSV exports", None),
    ("custom.domain", "boolean", "Custom domain", None),
    ("white.label", "boolean", "White-label listing pages", None),
    ("api.access", "boolean", "API access", None),
    ("listings.publish", "limit", "Published listings", "listing"),
    ("photos.upload", "limit", "Photo uploads", "photo"),
    ("ai.descriptions", "limit", "AI listing descriptions", "description"),
    ("seats", "limit", "Team seats", "seat"),
    ("ai.tokens", "metered", "AI tokens", "token"),
    ("sms.sent", "metered", "SMS to buyers", "message"),
    ("emails.sent", "metered", "Emails to buyers", "email"),
    ("tours.minutes", "metered", "Virtual tour minutes", "minute"),
]


def _limit(n: int, reset: str = "month") -> dict[str, Any]:
    return {"limit": n, "reset": reset}


FREE: dict[str, Any] = {
    "listings.publish": _limit(5),
    "photos.upload": _limit(50),
    "ai.descriptions": _limit(10),
    "seats": _limit(1, "never"),
    "ai.tokens": True,
    "emails.sent": True,
}
PRO: dict[str, Any] = {
    **{key: True for key, type_, _, _ in FEATURES if type_ != "limit"},
    "listings.publish": _limit(100),
    "photos.upload": _limit(2000),
    "ai.descriptions": _limit(200),
    "seats": _limit(10, "never"),
}


@dataclass(frozen=True)
class DemoTenant:
    key: str
    name: str
    pro: bool  # given pro's grants as overrides: only Stripe puts a tenant on pro
    usage: dict[str, tuple[int, ...]] = field(default_factory=dict)  # feature -> events' sizes


TENANTS = [
    DemoTenant(
        "sunny-realty", "Sunny Realty", False, {"listings.publish": (1,), "photos.upload": (12,)}
    ),
    DemoTenant(
        "oak-street",
        "Oak Street Homes",
        False,
        {"listings.publish": (1, 1, 1, 1), "ai.descriptions": (5, 4), "emails.sent": (120,)},
    ),
    # Past its photo limit: usage reported after the fact (without `enforce`) is counted whole.
    DemoTenant(
        "harbor-brokers",
        "Harbor Brokers",
        False,
        {"listings.publish": (2, 3), "photos.upload": (40, 23)},
    ),
    DemoTenant(
        "skyline-estates",
        "Skyline Estates",
        True,
        {
            "listings.publish": (42,),
            "ai.descriptions": (150, 36),
            "seats": (8,),
            "ai.tokens": (18_250,),
            "tours.minutes": (95,),
        },
    ),
    DemoTenant(
        "metro-lettings",
        "Metro Lettings",
        True,
        {"seats": (10,), "photos.upload": (1500, 560), "sms.sent": (340,)},
    ),
]
REFUSED = ("harbor-brokers", "listings.publish")
ALLOWED = ("sunny-realty", "listings.publish")
