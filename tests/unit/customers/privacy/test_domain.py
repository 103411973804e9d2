"""Pure rules of privacy requests: redaction of stored documents, what an export reveals about
the person, anonymised events, the keyed suppression hash, and the request shape."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from omnicommerce.customers.privacy.domain import (
    Subject,
    anonymised_event_payload,
    harvest,
    suppression_hash,
)
from omnicommerce.customers.privacy.schemas import PrivacyRequestIn
from omnicommerce.platform.pii import ERASED, redact, redact_json_text, usable_terms

MARKER = "zq-marker-7731"


def test_redact_erases_pii_keys_and_mentions_and_keeps_the_shape() -> None:
    document = {
        "order_id": "ord_1",
        "total": 4200,
        "address": {"name": "Ada L", "line1": "1 Main St", "country": "US"},
        "ship_to": [40.7, -73.9],
        "note": f"call {MARKER.upper()} at the door",
        "lines": [{"sku": "SKU-A", "quantity": 2}],
    }

    out = redact(document, usable_terms([MARKER]))

    assert out == {
        "order_id": "ord_1",
        "total": 4200,
        "address": {"name": ERASED, "line1": ERASED, "country": "US"},
        "ship_to": None,
        "note": ERASED,
        "lines": [{"sku": "SKU-A", "quantity": 2}],
    }


def test_redact_json_text_leaves_documents_without_personal_data_byte_for_byte() -> None:
    text = '{"b": 1,  "a": "x"}'  # not orjson's spelling: rewriting it would count as a change
    assert redact_json_text(text, ["someone"]) == text
    assert redact_json_text(f"free text about {MARKER}", [MARKER]) == ERASED
    assert redact_json_text("free text", [MARKER]) == "free text"


json_leaf = st.one_of(st.integers(-(2**53), 2**53), st.booleans(), st.none(), st.text(max_size=12))
json_docs = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(doc=json_docs, prefix=st.text(max_size=5), suffix=st.text(max_size=5), key=st.text(max_size=8))
def test_a_planted_term_never_survives_redaction(doc: Any, prefix: str, suffix: str, key: str) -> None:
    planted = {"doc": doc, key: [f"{prefix}{MARKER}{suffix}"], "upper": MARKER.upper(), f"by {MARKER}": 1}
    text = orjson.dumps(redact(planted, usable_terms([MARKER]))).decode()
    assert MARKER not in text.lower()


def test_harvest_finds_record_ids_and_identifying_strings_but_not_product_or_event_names() -> None:
    export = {
        "orders": [
            {
                "id": "ord_1",
                "email": "ada@example.com",
                "fulfillment": {"address": {"name": "Ada L", "line1": "1 Main St"}},
                "lines": [{"sku": "SKU-A", "name": "Blue Tee"}],
            }
        ],
        "events": [{"id": "cev_1", "message_id": "m1", "name": "Product Viewed", "user_id": "u-77"}],
        "fulfillment": [{"id": "ful_1", "order_id": "ord_1", "arrival_car": "red Golf"}],
    }

    refs, terms = harvest(export)

    assert refs == ["ord_1", "ful_1"]  # event ids are not records other contexts mention them by
    assert set(terms) == {"ada@example.com", "Ada L", "1 Main St", "u-77", "red Golf"}


def test_widened_subject_never_treats_an_id_as_a_term_and_drops_tiny_terms() -> None:
    subject = Subject(customer_ids=("CUS_1",), emails=("ada@example.com",))
    wide = subject.widened({"events": [{"user_id": "CUS_1", "first_name": "Al", "last_name": "Lovelace"}]})
    assert wide.terms == ("ada@example.com", "lovelace")
    assert wide.keys == ("CUS_1", "ada@example.com")


def test_an_erased_event_keeps_commerce_facts_only() -> None:
    payload = {
        "properties": {
            "sku": "SKU-A",
            "price": 1999,
            "currency": "USD",
            "gift": True,
            "note": MARKER,
            "product": {"name": "Tee", "quantity": 2},
        },
        "traits": {"email": "ada@example.com"},
        "context": {"ip": "203.0.113.7"},
    }
    assert anonymised_event_payload(payload) == {
        "properties": {
            "sku": "SKU-A",
            "price": 1999,
            "currency": "USD",
            "gift": True,
            "product": {"quantity": 2},
        },
        "erased": True,
    }


def test_the_suppression_hash_is_keyed_and_hides_the_value() -> None:
    one = suppression_hash("secret-a", "email", "ada@example.com")
    assert one == suppression_hash("secret-a", "email", "ada@example.com")
    assert one != suppression_hash("secret-b", "email", "ada@example.com")  # useless without the key
    assert one != suppression_hash("secret-a", "phone", "ada@example.com")
    assert len(one) == 64 and "ada" not in one


@pytest.mark.parametrize("body", [{}, {"customer_id": "cus_1", "email": "ada@example.com"}])
def test_a_request_names_the_person_exactly_once(body: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        PrivacyRequestIn.model_validate(body)
