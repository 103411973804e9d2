"""Privacy requests (GDPR / CCPA): who the request is about, what of their data each context
must find, the suppression hash of an erased identifier, and the errors. Pure: no SQL, no I/O.

Other contexts take a :class:`Subject` in their ``customer_data`` / ``erase_customer_pii``
functions; it names the person by every key those contexts may have stored.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from omnicommerce.platform.errors import Conflict, InvalidInput, NotFound
from omnicommerce.platform.pii import PII_KEYS, usable_terms


class SubjectNotFound(NotFound):
    code = "privacy-subject-not-found"
    title = "No customer matches the request"


class SubjectRequired(InvalidInput):
    code = "privacy-subject-required"
    title = "Name the person by customer_id or email"


class IdentifierSuppressed(Conflict):
    """An erased person's identifier came back (a sign-up, an import): the suppression list
    refuses to create a profile for it again."""

    code = "identifier-suppressed"
    title = "Identifier erased on request"


@dataclass(frozen=True, slots=True)
class Subject:
    """The person a privacy request is about.

    ``customer_ids``: the profile and every account merged into it. ``emails`` / ``phones``:
    normalised contacts. ``identifiers``: (type, value) pairs of the identity graph. ``refs``:
    ids of records about them (carts, orders, fulfillment orders) other stores mention them by.
    ``terms``: their identifying strings (names, contacts, address lines), lower-cased, for
    redacting free text in rows found through the other keys.
    """

    customer_ids: tuple[str, ...]
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    identifiers: tuple[tuple[str, str], ...] = ()
    refs: tuple[str, ...] = ()
    terms: tuple[str, ...] = ()

    @property
    def keys(self) -> tuple[str, ...]:
        """Everything a stored document about them may mention them by."""
        return tuple(dict.fromkeys([*self.customer_ids, *self.refs, *self.emails, *self.phones]))

    def widened(self, sections: Mapping[str, Any]) -> Subject:
        """This subject plus the record ids and identifying strings found in ``sections``
        (what the contexts exported), so erasure reaches text that mentions them."""
        refs, terms = harvest(sections)
        # Ids stay: the financial record names them (terms are lower-cased, so compare so).
        ids = {i.lower() for i in (*self.customer_ids, *self.refs, *refs)}
        return Subject(
            customer_ids=self.customer_ids,
            emails=self.emails,
            phones=self.phones,
            identifiers=self.identifiers,
            refs=tuple(dict.fromkeys([*self.refs, *refs])),
            terms=tuple(
                t for t in usable_terms([*self.terms, *terms, *self.emails, *self.phones]) if t not in ids
            ),
        )


# Keys under which exported records carry the ids of records about the person.
REF_KEYS = frozenset({"id", "order_id", "cart_id", "fulfillment_order_id"})
_ID_PREFIXES = ("crt_", "ord_", "ful_", "ret_", "rtd_")


@dataclass(slots=True)
class _Harvest:
    refs: list[str] = field(default_factory=list)
    terms: list[str] = field(default_factory=list)


def harvest(document: Any) -> tuple[list[str], list[str]]:
    """(record ids, identifying strings) found in an export document."""
    found = _Harvest()
    _walk(document, None, found)
    return list(dict.fromkeys(found.refs)), list(dict.fromkeys(found.terms))


# Records whose "name" is a thing's, not a person's: a customer event (its event name) and a
# cart or order line (the product name).
_NAMED_THINGS = ("message_id", "sku")


def _walk(value: Any, key: str | None, found: _Harvest) -> None:
    if isinstance(value, Mapping):
        thing = any(k in value for k in _NAMED_THINGS)
        for k, v in value.items():
            _walk(v, None if thing and k == "name" else str(k), found)
    elif isinstance(value, list):
        for v in value:
            _walk(v, key, found)
    elif isinstance(value, str) and value:
        if key in PII_KEYS:
            found.terms.append(value)
        elif key in REF_KEYS and (key != "id" or value.startswith(_ID_PREFIXES)):
            found.refs.append(value)


def suppression_hash(secret: str, identifier_type: str, value: str) -> str:
    """HMAC-SHA256 of a normalised identifier under a server secret: the list can tell an erased
    identifier when it comes back, but cannot be reversed or checked without the secret."""
    message = f"{identifier_type}:{value}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


# Property keys of customer events whose string values are commerce facts, not personal data;
# every other string is erased from an erased person's events (numbers and booleans stay).
KEPT_EVENT_KEYS = frozenset(
    {
        "sku",
        "skus",
        "currency",
        "order_id",
        "cart_id",
        "product_id",
        "category",
        "category_id",
        "channel",
        "location_id",
        "status",
        "source",
        "coupon",
        "payment_method",
    }
)


def anonymised_event_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """An erased person's event: traits and context (device, IP, user agent) dropped; of the
    properties only numbers, booleans and commerce facts stay (totals still add up)."""
    properties = payload.get("properties")
    kept = _facts_only(properties) if isinstance(properties, Mapping) else {}
    return {"properties": kept, "erased": True}


def _facts_only(value: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in value.items():
        if isinstance(v, bool | int | float) or (isinstance(v, str) and k in KEPT_EVENT_KEYS):
            out[k] = v
        elif isinstance(v, list) and k in KEPT_EVENT_KEYS:
            out[k] = [x for x in v if isinstance(x, str | int | float)]
        elif isinstance(v, Mapping):
            out[k] = _facts_only(v)
        elif isinstance(v, list):
            out[k] = [_facts_only(x) for x in v if isinstance(x, Mapping)]
    return out


def counts_total(counts: Mapping[str, int]) -> int:
    return sum(counts.values())


def identifier_pairs(pairs: Iterable[tuple[str, str | None]]) -> tuple[tuple[str, str], ...]:
    return tuple(dict.fromkeys((t, v) for t, v in pairs if v))
