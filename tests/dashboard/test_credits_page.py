"""A tenant's credits on its dashboard page: balance, buckets and ledger, and a grant with a
reason that the API then spends."""

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from billplane.credits import topups
from billplane.models import Project, Tenant
from conftest import Clock, Setup
from dashboard.conftest import Operator, field_error


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_an_operator_grants_credits_and_sees_them_spent(
    operator: Operator, realtyos: Setup
) -> None:
    pool = {"key": "credits", "name": "Credits", "costs": {"ai.tokens": 2}}
    realtyos.admin.call("POST", "/admin/api/projects/realtyos/credit-pools", 201, json=pool)
    page = operator.page("/projects/realtyos/tenants/acme")
    assert "balance 0" in _text(page)

    operator.post(
        "/projects/realtyos/tenants/acme/credits",
        {"pool": "credits", "amount": "30", "reason": "Pilot customer"},
    )
    body = {"tenant": "acme", "feature": "ai.tokens", "quantity": 5, "idempotency_key": "t1"}
    assert realtyos.api.post("/v1/usage", body | {"enforce": True}).status_code == 201

    credits = _text(operator.page("/projects/realtyos/tenants/acme").split('id="credits-title"')[1])
    assert "balance 20" in credits
    assert "deduction -10" in credits
    assert "grant 30" in credits
    assert "Pilot customer" in credits
    audit = realtyos.admin.call("GET", "/admin/api/audit")["data"]
    assert [e["actor"] for e in audit if e["action"] == "credits.grant"] == ["dashboard"]


def test_a_grant_without_a_reason_is_shown_back_and_grants_nothing(
    operator: Operator, realtyos: Setup
) -> None:
    pool = {"key": "credits", "name": "Credits"}
    realtyos.admin.call("POST", "/admin/api/projects/realtyos/credit-pools", 201, json=pool)
    response = operator.post(
        "/projects/realtyos/tenants/acme/credits", {"pool": "credits", "amount": "30"}, 422
    )
    assert field_error(response.text, "grant-reason")
    answer = realtyos.api.get("/v1/tenants/acme/balances").json()
    assert answer["pools"][0]["balance"] == 0


def test_the_tenant_page_shows_top_ups_and_what_a_refund_could_not_remove(
    operator: Operator, realtyos: Setup, session: Session, clock: Clock
) -> None:
    pool = {"key": "credits", "name": "Credits", "costs": {"ai.tokens": 1}}
    pool["packs"] = {"price_pack500": 500}
    realtyos.admin.call("POST", "/admin/api/projects/realtyos/credit-pools", 201, json=pool)
    project = session.scalars(select(Project).where(Project.key == "realtyos")).one()
    tenant = session.scalars(select(Tenant).where(Tenant.key == "acme")).one()
    bought = {"price": "price_pack500", "payment_intent": "pi_page", "currency": "usd"}
    topups.land_topup(
        session, project, tenant.id, checkout_id="cs_test_page", amount=900, actor="t",
        now=clock(), **bought,
    )  # fmt: skip
    body = {"tenant": "acme", "feature": "ai.tokens", "quantity": 450, "idempotency_key": "t1"}
    assert realtyos.api.post("/v1/usage", body | {"enforce": True}).status_code == 201
    topups.refund_topup(
        session, "cs_test_page", amount_refunded=900, charge_amount=900, charge_id="ch_page",
        currency="usd", actor="t", now=clock(),
    )  # fmt: skip

    page = operator.page("/projects/realtyos/tenants/acme")
    history = _text(page.split('id="billing-title"')[1].split("</section>")[0])
    credits = _text(page.split('id="credits-title"')[1])
    assert "credits 500 9.00 USD refunded 9.00 USD 500 450" in history
    assert "balance 0" in credits
    assert "refund -50" in credits
    assert "450 credits were spent already" in credits
