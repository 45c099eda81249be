"""Stripe's bracketed form encoding, decoded as the SDK and curl send it."""

from urllib.parse import urlencode

import pytest

from stripe_double import StripeError
from stripe_double.forms import decode, merge_metadata


def test_nested_hashes_and_indexed_lists_decode_to_dicts_and_lists() -> None:
    body = urlencode(
        {
            "line_items[0][price]": "price_a",
            "line_items[0][quantity]": "2",
            "line_items[1][price]": "price_b",
            "subscription_data[metadata][tenant]": "acme",
            "subscription_data[trial_period_days]": "14",
            "expand[0]": "customer",
        }
    )

    assert decode(body) == {
        "line_items": [{"price": "price_a", "quantity": "2"}, {"price": "price_b"}],
        "subscription_data": {"metadata": {"tenant": "acme"}, "trial_period_days": "14"},
        "expand": ["customer"],
    }


def test_empty_brackets_append_in_order() -> None:
    assert decode("expand[]=customer&expand[]=latest_invoice") == {
        "expand": ["customer", "latest_invoice"]
    }


def test_indices_sort_numerically_not_as_text() -> None:
    body = "&".join(f"items[{n}][price]=p{n}" for n in (10, 2, 0, 1, 3, 4, 5, 6, 7, 8, 9))

    assert [item["price"] for item in decode(body)["items"]] == [f"p{n}" for n in range(11)]


def test_metadata_merge_removes_keys_sent_empty_and_clears_on_empty_hash() -> None:
    current = {"tenant": "acme", "tier": "gold"}

    assert merge_metadata(current, {"tier": "", "region": "eu"}) == {
        "tenant": "acme",
        "region": "eu",
    }
    assert merge_metadata(current, "") == {}
    assert merge_metadata(current, None) == current
    with pytest.raises(StripeError):
        merge_metadata(current, "not-a-hash")
