"""Privacy use cases against the real databases: erasure reaches merged accounts and the text
stores (outbox, webhook log, stored answers) but touches nobody else's data; the suppression
list recognises an erased person however their contact is typed, and holds no plain value."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from sqlalchemy import insert, select, update

from omnicommerce.customers import service as customers
from omnicommerce.customers.domain import Identifier
from omnicommerce.customers.models import customers as customers_table
from omnicommerce.customers.privacy import service as privacy
from omnicommerce.customers.privacy.domain import IdentifierSuppressed, SubjectNotFound
from omnicommerce.customers.privacy.models import privacy_suppressions
from omnicommerce.customers.privacy.schemas import PrivacyRequestIn
from omnicommerce.integrations.models import webhook_deliveries
from omnicommerce.platform import clock
from omnicommerce.platform.auth import SYSTEM, Principal, Scope
from omnicommerce.platform.db import Database, transaction
from omnicommerce.platform.errors import Forbidden
from omnicommerce.platform.idempotency import idempotency_records
from omnicommerce.platform.ids import new_id
from omnicommerce.platform.outbox import outbox

ADA, BOB = "ada.privacy@example.com", "bob.privacy@example.com"


def _people(db: Database) -> tuple[str, str, str]:
    """Ada (with a second account merged into her profile) and Bob."""
    with transaction(db) as uow:
        customers.import_customers(
            uow,
            [
                {"email": ADA, "first_name": "Adalind", "last_name": "Quarterfield"},
                {"phone": "+14155550123", "first_name": "Adalind"},
                {"email": BOB, "first_name": "Bob", "last_name": "Quarterfield"},
            ],
        )
    with db.engine.begin() as conn:
        ids = dict(conn.execute(select(customers_table.c.first_name, customers_table.c.id)).all())
        ada = conn.execute(select(customers_table.c.id).where(customers_table.c.email == ADA)).scalar_one()
        second = conn.execute(
            select(customers_table.c.id).where(customers_table.c.phone == "+14155550123")
        ).scalar_one()
        conn.execute(update(customers_table).where(customers_table.c.id == second).values(merged_into=ada))
    return ada, second, ids["Bob"]


def _document(customer_id: str, email: str) -> str:
    name = "Adalind Q" if email == ADA else "Bob Q"
    return orjson.dumps({"customer_id": customer_id, "contact": {"email": email, "name": name}}).decode()


def _plant_text_stores(db: Database, person: str, email: str) -> None:
    now = clock.now()
    with db.engine.begin() as conn:
        conn.execute(
            insert(outbox).values(
                id=new_id("evt"),
                type="test.contact",
                version=1,
                subject="omni.test.contact",
                payload=_document(person, email),
                occurred_at=now,
            )
        )
        conn.execute(
            insert(webhook_deliveries).values(
                id=new_id("whd"),
                endpoint_id="whe_1",
                event_id=new_id("evt"),
                event_type="test.contact",
                payload=_document(person, email),
                status="succeeded",
                attempts=1,
                created_at=now,
            )
        )
        conn.execute(
            insert(idempotency_records).values(
                scope=f"key {person}",
                key=new_id("k"),
                fingerprint="0" * 64,
                status=201,
                body=_document(person, email),
                created_at=now,
            )
        )


def _texts(db: Database) -> list[str]:
    with db.engine.connect() as conn:
        return [  # outbox, webhook log, stored answers
            *conn.execute(select(outbox.c.payload).where(outbox.c.type == "test.contact")).scalars(),
            *conn.execute(select(webhook_deliveries.c.payload)).scalars(),
            *conn.execute(select(idempotency_records.c.body)).scalars(),
        ]


def test_erasure_covers_merged_accounts_and_text_stores_and_spares_others(db: Database) -> None:
    ada, second, bob = _people(db)
    _plant_text_stores(db, ada, ADA)
    _plant_text_stores(db, bob, BOB)

    with transaction(db) as uow:
        result = privacy.erase_person(uow, SYSTEM, PrivacyRequestIn(email=ADA.upper()))

    assert result.customer_ids == [ada, second]
    assert result.erased["outbox"] == 1 and result.erased["integrations"] == 1
    assert result.erased["idempotency_records"] == 1
    with db.engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(customers_table))}
    assert all(
        rows[i].email is None and rows[i].phone is None and rows[i].first_name is None for i in (ada, second)
    )
    assert (rows[bob].email, rows[bob].last_name) == (BOB, "Quarterfield")  # same surname, other person
    texts = " ".join(_texts(db))
    assert ADA not in texts and "Adalind" not in texts and ada in texts  # the id stays, the data goes
    assert texts.count(BOB) == 3 and "Quarterfield" not in texts


def test_the_suppression_list_recognises_an_erased_person_however_typed(db: Database) -> None:
    ada, _, _ = _people(db)
    with transaction(db) as uow:
        privacy.erase_person(uow, SYSTEM, PrivacyRequestIn(customer_id=ada))

    with db.uow(readonly=True) as uow:
        assert privacy.is_suppressed(uow, email=f"  {ADA.upper()} ")
        assert privacy.is_suppressed(uow, phone="(415) 555-0123")  # the merged account's phone
        assert privacy.is_suppressed(uow, ids=[Identifier("email", ADA)])
        assert privacy.suppressed(uow, [("email", ADA), ("email", BOB)]) == {("email", ADA)}
        assert not privacy.is_suppressed(uow, email=BOB, phone="not a phone")
        with pytest.raises(IdentifierSuppressed):
            privacy.check_not_suppressed(uow, email=ADA)
    with db.engine.connect() as conn:
        stored = conn.execute(select(privacy_suppressions)).all()
    assert {r.identifier_type for r in stored} == {"email", "phone"}
    assert not any("ada" in str(tuple(r)) or "4155550123" in str(tuple(r)) for r in stored)


def test_a_second_erasure_finds_nothing_left_by_email_and_repeats_cleanly_by_id(db: Database) -> None:
    ada, _, _ = _people(db)
    with transaction(db) as uow:
        privacy.erase_person(uow, SYSTEM, PrivacyRequestIn(customer_id=ada))
    with transaction(db) as uow, pytest.raises(SubjectNotFound):
        privacy.erase_person(uow, SYSTEM, PrivacyRequestIn(email=ADA))
    with transaction(db) as uow:
        again = privacy.erase_person(uow, SYSTEM, PrivacyRequestIn(customer_id=ada))
    assert again.suppressed_identifiers == 0 and again.erased["outbox"] == 0


@pytest.mark.parametrize(
    "actor",
    [
        Principal("api_key", "k1", frozenset({Scope.CUSTOMERS_WRITE})),
        Principal("api_key", "k2", frozenset({Scope.PRIVACY_WRITE}), channel="pos", location="store-1"),
        Principal("customer", "cus_x", frozenset({Scope.PRIVACY_WRITE}), "web", None, "cus_x"),
    ],
)
def test_only_an_unbound_privacy_key_may_act(db: Database, actor: Principal) -> None:
    ada, _, _ = _people(db)
    with db.uow() as uow, pytest.raises(Forbidden):
        privacy.export_person(uow, actor, PrivacyRequestIn(customer_id=ada))


def _summary(db: Database, ada: str) -> Any:
    with db.uow(readonly=True) as uow:
        return privacy.requests_for(uow, SYSTEM, ada)


def test_the_journal_says_who_when_and_what_without_the_data(db: Database) -> None:
    ada, second, _ = _people(db)
    with transaction(db) as uow:
        privacy.erase_person(uow, SYSTEM, PrivacyRequestIn(customer_id=second, reason="ticket 9"))
    [entry] = _summary(db, ada)
    assert (entry.kind, entry.requested_by, entry.reason) == ("erasure", SYSTEM.id, "ticket 9")
    assert entry.summary["accounts"] == [ada, second]
    assert entry.summary["suppressed_identifier_types"] == ["email", "phone"]
    assert entry.summary["erased"]["customers"] >= 2
    assert "Adalind" not in str(entry) and ADA not in str(entry)
