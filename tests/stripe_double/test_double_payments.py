"""One-time payments: a payment-mode Checkout pays a PaymentIntent with one charge, and refunds
made through the official SDK move the charge and announce `charge.refunded`."""

import pytest

import stripe
from stripe_double import StripeDouble
from stripe_double.testing import WebhookRecorder

SUCCESS_URL = "https://app.example/credits/done"
API_KEY = "sk_test_double_tests"


def _paid_session(double: StripeDouble, client: stripe.StripeClient) -> stripe.checkout.Session:
    price = client.v1.prices.create(
        params={"product_data": {"name": "500 credits"}, "unit_amount": 900, "currency": "eur"}
    )
    customer = client.v1.customers.create(params={"email": "ops@acme.test"})
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "customer": customer.id,
            "line_items": [{"price": price.id, "quantity": 1}],
            "success_url": SUCCESS_URL,
        }
    )
    double.complete_checkout(session.id)
    return client.v1.checkout.sessions.retrieve(session.id)


def test_a_paid_payment_checkout_carries_its_payment_intent_and_charge(
    double: StripeDouble, client: stripe.StripeClient
) -> None:
    session = _paid_session(double, client)
    intent = client.v1.payment_intents.retrieve(str(session.payment_intent))
    charge = client.v1.charges.retrieve(str(intent.latest_charge))

    assert (session.status, session.payment_status, session.subscription) == (
        "complete",
        "paid",
        None,
    )
    assert (intent.status, intent.amount, intent.currency) == ("succeeded", 900, "eur")
    assert intent.customer == session.customer
    assert (charge.amount, charge.amount_refunded, charge.refunded) == (900, 0, False)
    assert charge.payment_intent == intent.id
    found = client.v1.checkout.sessions.list(params={"payment_intent": intent.id})
    assert [s.id for s in found.data] == [session.id]


def test_partial_refunds_add_up_on_the_charge_until_it_is_refunded(
    double: StripeDouble, client: stripe.StripeClient
) -> None:
    session = _paid_session(double, client)
    pi = str(session.payment_intent)

    first = client.v1.refunds.create(params={"payment_intent": pi, "amount": 300})
    charge = client.v1.charges.retrieve(str(first.charge))
    assert (first.status, first.amount, first.payment_intent) == ("succeeded", 300, pi)
    assert (charge.amount_refunded, charge.refunded) == (300, False)

    client.v1.refunds.create(params={"charge": charge.id})  # the rest
    charge = client.v1.charges.retrieve(charge.id)
    assert (charge.amount_refunded, charge.refunded) == (900, True)
    assert [r["amount"] for r in charge.to_dict()["refunds"]["data"]] == [600, 300]


def test_a_refund_past_what_is_left_is_refused(
    double: StripeDouble, client: stripe.StripeClient
) -> None:
    session = _paid_session(double, client)
    pi = str(session.payment_intent)
    client.v1.refunds.create(params={"payment_intent": pi, "amount": 800})

    with pytest.raises(stripe.InvalidRequestError) as too_much:
        client.v1.refunds.create(params={"payment_intent": pi, "amount": 200})
    assert too_much.value.code == "amount_too_large"
    client.v1.refunds.create(params={"payment_intent": pi})
    with pytest.raises(stripe.InvalidRequestError) as again:
        client.v1.refunds.create(params={"payment_intent": pi})
    assert again.value.code == "charge_already_refunded"


def test_the_sdks_global_style_refund_reaches_the_double(
    double: StripeDouble, client: stripe.StripeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = _paid_session(double, client)
    monkeypatch.setattr(stripe, "api_base", double.base_url)
    monkeypatch.setattr(stripe, "max_network_retries", 0)

    refund = stripe.Refund.create(
        api_key=API_KEY, payment_intent=str(session.payment_intent), amount=450
    )

    assert (refund.amount, refund.status) == (450, "succeeded")
    assert client.v1.charges.retrieve(str(refund.charge)).amount_refunded == 450


def test_a_refund_is_announced_as_charge_refunded_with_the_charge_after_it(
    double: StripeDouble, client: stripe.StripeClient, recorder: WebhookRecorder
) -> None:
    session = _paid_session(double, client)
    client.v1.refunds.create(params={"payment_intent": str(session.payment_intent), "amount": 300})
    double.wait_for_deliveries()

    (event,) = double.events("charge.refunded")
    charge = event["data"]["object"]
    assert (charge["amount"], charge["amount_refunded"], charge["refunded"]) == (900, 300, False)
    assert charge["payment_intent"] == session.payment_intent
    assert [r["amount"] for r in charge["refunds"]["data"]] == [300]
    assert event["data"]["previous_attributes"]["amount_refunded"] == 0
    types = [e["type"] for e in double.events()]
    assert types.index("charge.succeeded") < types.index("checkout.session.completed")
    assert "refund.created" in types
    assert "charge.refunded" in recorder.types()  # delivered, signed
