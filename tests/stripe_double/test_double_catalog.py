"""Products, prices and the API's common behaviour (errors, auth, livemode, lists, expansion,
idempotency), all through the official SDK."""

import pytest

import stripe
from stripe_double import StripeDouble


def test_product_and_recurring_price_round_trip(client: stripe.StripeClient) -> None:
    product = client.v1.products.create(params={"name": "Pro", "metadata": {"plan": "pro"}})
    price = client.v1.prices.create(
        params={
            "product": product.id,
            "unit_amount": 1500,
            "currency": "EUR",
            "recurring": {"interval": "month", "interval_count": 3},
            "lookup_key": "pro_quarterly",
        }
    )

    fetched = client.v1.prices.retrieve(price.id)

    assert client.v1.products.retrieve(product.id).metadata.to_dict() == {"plan": "pro"}
    assert fetched.id.startswith("price_")
    assert fetched.product == product.id
    assert (fetched.unit_amount, fetched.currency, fetched.type) == (1500, "eur", "recurring")
    assert fetched.recurring is not None
    assert (fetched.recurring.interval, fetched.recurring.interval_count) == ("month", 3)
    assert fetched.lookup_key == "pro_quarterly"
    assert fetched.livemode is False


def test_price_without_recurring_is_one_time(client: stripe.StripeClient) -> None:
    price = client.v1.prices.create(
        params={"product_data": {"name": "Setup fee"}, "unit_amount": 500, "currency": "usd"}
    )

    assert price.type == "one_time"
    assert price.recurring is None
    assert client.v1.products.retrieve(str(price.product)).name == "Setup fee"


def test_deactivated_price_leaves_the_active_list(
    client: stripe.StripeClient, catalog: dict[str, stripe.Price]
) -> None:
    client.v1.prices.update(catalog["yearly"].id, params={"active": False})

    product = str(catalog["monthly"].product)
    active = client.v1.prices.list(params={"product": product, "active": True})

    assert [price.id for price in active.data] == [catalog["monthly"].id]


def test_unknown_id_raises_invalid_request_error(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.subscriptions.retrieve("sub_does_not_exist")

    assert raised.value.http_status == 404
    assert raised.value.code == "resource_missing"
    assert "sub_does_not_exist" in str(raised.value.user_message)


def test_missing_required_param_names_the_param(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.prices.create(params={"currency": "usd", "product_data": {"name": "x"}})

    assert raised.value.http_status == 400
    assert raised.value.param == "unit_amount"


def test_key_that_is_not_a_secret_key_is_refused(double: StripeDouble) -> None:
    publishable = stripe.StripeClient(
        "pk_test_nope", base_addresses={"api": double.base_url}, max_network_retries=0
    )

    with pytest.raises(stripe.AuthenticationError):
        publishable.v1.customers.list()


def test_live_key_makes_live_objects(double: StripeDouble) -> None:
    live = stripe.StripeClient(
        "sk_live_double", base_addresses={"api": double.base_url}, max_network_retries=0
    )

    customer = live.v1.customers.create(params={"email": "live@example.com"})

    assert customer.livemode is True
    assert double.events("customer.created")[0]["livemode"] is True


def test_module_level_api_base_works_too(double: StripeDouble) -> None:
    saved = stripe.api_base, stripe.api_key
    stripe.api_base, stripe.api_key = double.base_url, "sk_test_module"
    try:
        created = stripe.Customer.create(email="module@example.com")
        assert stripe.Customer.retrieve(created.id).email == "module@example.com"
    finally:
        stripe.api_base, stripe.api_key = saved


def test_lists_page_newest_first_and_auto_paging_sees_everything(
    client: stripe.StripeClient,
) -> None:
    created = [client.v1.customers.create(params={"name": f"c{n}"}).id for n in range(13)]

    first_page = client.v1.customers.list(params={"limit": 5})
    everyone = [c.id for c in first_page.auto_paging_iter()]

    assert first_page.has_more is True
    assert [c.id for c in first_page.data] == created[::-1][:5]
    assert everyone == created[::-1]


def test_expand_follows_nested_paths(
    client: stripe.StripeClient, catalog: dict[str, stripe.Price]
) -> None:
    customer = client.v1.customers.create(params={"email": "x@example.com"})
    subscription = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": catalog["monthly"].id}]}
    )

    expanded = client.v1.subscriptions.retrieve(
        subscription.id, params={"expand": ["customer", "items.data.price.product"]}
    )

    assert isinstance(expanded.customer, stripe.Customer)
    assert expanded.customer.email == "x@example.com"
    product = expanded["items"].data[0].price.product
    assert isinstance(product, stripe.Product)
    assert product.name == "Pro"


def test_retried_post_with_same_idempotency_key_is_replayed(
    client: stripe.StripeClient,
) -> None:
    first = client.v1.customers.create(
        params={"email": "once@example.com"}, options={"idempotency_key": "create-once"}
    )
    again = client.v1.customers.create(
        params={"email": "once@example.com"}, options={"idempotency_key": "create-once"}
    )

    assert again.id == first.id
    assert len(client.v1.customers.list().data) == 1
    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.create(
            params={"email": "other@example.com"}, options={"idempotency_key": "create-once"}
        )


def test_ending_before_pages_back_towards_the_newest(client: stripe.StripeClient) -> None:
    created = [client.v1.customers.create(params={"name": f"c{n}"}).id for n in range(6)]
    newest_first = created[::-1]

    page = client.v1.customers.list(params={"ending_before": newest_first[4], "limit": 2})

    assert [c.id for c in page.data] == newest_first[2:4]
    assert page.has_more is True
