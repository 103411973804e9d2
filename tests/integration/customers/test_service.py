import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from omnicommerce.customers import service
from omnicommerce.customers.domain import (
    CustomerExists,
    CustomerNotFound,
    InvalidCredentials,
)
from omnicommerce.customers.models import customers, refresh_tokens
from omnicommerce.customers.schemas import CustomerCreate, CustomerUpdate, SignUp
from omnicommerce.platform import clock
from omnicommerce.platform.auth import SYSTEM, Principal, Scope, authenticate_customer_token
from omnicommerce.platform.config import Settings
from omnicommerce.platform.db import Database
from omnicommerce.platform.errors import Forbidden
from omnicommerce.platform.outbox import outbox
from omnicommerce.platform.passwords import hash_password
from omnicommerce.platform.refresh_tokens import InvalidRefreshToken, RefreshTokenReused

POS = Principal(
    "api_key", "key_pos", frozenset({Scope.CUSTOMERS_WRITE, Scope.CUSTOMERS_READ}), "pos", "store-007"
)


def _count(db: Database, table=customers) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _sign_up(db: Database, settings: Settings, email: str = "ada@example.com", password: str = "s3cret-pass"):
    with db.uow() as uow:
        tokens = service.sign_up(
            uow, cmd=SignUp(email=email, password=password, channel="web"), settings=settings
        )
        uow.commit()
    return tokens


@pytest.mark.slow
def test_find_or_create_by_email_under_20_threads_makes_one_customer(db: Database) -> None:
    barrier = threading.Barrier(20)
    ids: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            with db.uow() as uow:
                ids.append(service.find_or_create_by_email(uow, email=" Race@Example.com", channel="web"))
                uow.commit()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(ids) == 20 and len(set(ids)) == 1
    assert _count(db) == 1
    with db.engine.connect() as conn:
        assert conn.execute(select(customers.c.email)).scalar_one() == "race@example.com"
        assert (
            conn.execute(
                select(func.count()).select_from(outbox).where(outbox.c.type == "customer.created")
            ).scalar_one()
            == 1
        )


def test_find_or_create_keeps_the_outer_transaction_alive(db: Database) -> None:
    with db.uow() as uow:
        first = service.find_or_create_by_email(uow, email="a@example.com", channel="web")
        again = service.find_or_create_by_email(uow, email="A@EXAMPLE.COM", channel="pos")
        other = service.find_or_create_by_email(uow, email="b@example.com", channel="web")
        uow.commit()
    assert first == again != other
    assert _count(db) == 2


def test_find_or_create_costs_one_statement_when_new_and_two_when_known(db: Database) -> None:
    from sqlalchemy import event

    seen: list[str] = []

    def listener(*args: object) -> None:
        seen.append(str(args[2]))

    counts = []
    with db.uow() as uow:
        uow.conn  # noqa: B018  (BEGIN outside the count)
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            for email in ("new@example.com", " NEW@example.com", "other@example.com"):
                seen.clear()
                service.find_or_create_by_email(uow, email=email, channel="web")
                counts.append(len(seen))
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        assert [e.type for e in uow.pending_events] == ["customer.created", "customer.created"]
        uow.commit()
    assert counts == [1, 2, 1]  # INSERT … ON CONFLICT DO NOTHING; + SELECT when it was taken
    assert _count(db) == 2


def test_find_or_create_leaves_the_existing_customer_as_it_was(db: Database) -> None:
    with db.uow() as uow:
        first = service.find_or_create_by_email(uow, email="a@example.com", channel="web")
        uow.commit()
    with db.uow() as uow:
        assert service.find_or_create_by_email(uow, email="A@example.com", channel="pos") == first
        uow.commit()
    with db.engine.connect() as conn:
        row = conn.execute(select(customers.c.email, customers.c.created_channel)).one()
    assert tuple(row) == ("a@example.com", "web")


def test_create_customer_at_pos_without_password(db: Database) -> None:
    with db.uow() as uow:
        c = service.create_customer(uow, POS, CustomerCreate(phone="(415) 555-0123", first_name="Grace"))
        uow.commit()
    assert c.created_channel == "pos" and c.phone == "+14155550123" and not c.has_password
    with db.uow() as uow:
        assert service.get_customer(uow, POS, c.id) == c
        with pytest.raises(CustomerExists) as err:
            service.create_customer(uow, POS, CustomerCreate(phone="+1 415 555 0123"))
        assert err.value.extensions["fields"] == ["phone"]


def test_customer_principal_reaches_only_itself(db: Database, settings: Settings) -> None:
    tokens = _sign_up(db, settings)
    other = _sign_up(db, settings, email="bob@example.com")
    me = authenticate_customer_token(settings.secret_key, tokens.access_token)
    with db.uow() as uow:
        assert service.get_customer(uow, me, tokens.customer_id).email == "ada@example.com"
        with pytest.raises(CustomerNotFound):
            service.get_customer(uow, me, other.customer_id)
        with pytest.raises(CustomerNotFound):
            service.update_profile(uow, me, other.customer_id, CustomerUpdate(first_name="Eve"))
        with pytest.raises(Forbidden):
            service.search_customers(uow, me, q="bob")
        updated = service.update_profile(uow, me, tokens.customer_id, CustomerUpdate(first_name="Ada"))
        assert updated.first_name == "Ada" and updated.version == 2
        with pytest.raises(CustomerExists):
            service.update_profile(uow, me, tokens.customer_id, CustomerUpdate(email="BOB@example.com"))


def test_sign_in_by_email_or_phone_and_same_error_for_unknown(db: Database, settings: Settings) -> None:
    with db.uow() as uow:
        service.sign_up(
            uow,
            cmd=SignUp(email="ada@example.com", phone="4155550123", password="s3cret-pass", channel="web"),
            settings=settings,
        )
        uow.commit()
    with db.uow() as uow:
        by_email = service.sign_in(
            uow, identifier="ADA@example.com", password="s3cret-pass", channel="app", settings=settings
        )
        by_phone = service.sign_in(
            uow, identifier="+1 415-555-0123", password="s3cret-pass", channel="web", settings=settings
        )
        assert by_email.customer_id == by_phone.customer_id
        assert authenticate_customer_token(settings.secret_key, by_email.access_token).channel == "app"
        details = set()
        for ident, pw in [
            ("ada@example.com", "wrong-pass"),
            ("nobody@example.com", "s3cret-pass"),
            ("garbage", "s3cret-pass"),
        ]:
            with pytest.raises(InvalidCredentials) as err:
                service.sign_in(uow, identifier=ident, password=pw, channel="web", settings=settings)
            details.add((err.value.status, err.value.code, err.value.detail))
        assert details == {(401, "invalid-credentials", "invalid credentials")}


def test_passwordless_account_cannot_sign_in(db: Database, settings: Settings) -> None:
    with db.uow() as uow:
        service.find_or_create_by_email(uow, email="guest@example.com", channel="web")
        with pytest.raises(InvalidCredentials):
            service.sign_in(
                uow, identifier="guest@example.com", password="", channel="web", settings=settings
            )


def test_unknown_and_wrong_password_take_similar_time(db: Database, settings: Settings) -> None:
    _sign_up(db, settings)

    def timed(identifier: str) -> float:
        start = time.perf_counter()
        with db.uow() as uow, pytest.raises(InvalidCredentials):
            service.sign_in(
                uow, identifier=identifier, password="wrong-pass", channel="web", settings=settings
            )
        return time.perf_counter() - start

    timed("nobody@example.com")  # warm the dummy hash
    known = min(timed("ada@example.com") for _ in range(3))
    unknown = min(timed("nobody@example.com") for _ in range(3))
    assert unknown > known / 3  # both pay for argon2; without the dummy verify unknown is ~100x faster


def test_refresh_rotates_and_reuse_revokes_the_family(db: Database, settings: Settings) -> None:
    first = _sign_up(db, settings)
    with db.uow() as uow:
        second = service.refresh(uow, refresh_token=first.refresh_token, settings=settings)
        uow.commit()
    assert second.refresh_token != first.refresh_token and second.customer_id == first.customer_id
    with db.uow() as uow:
        third = service.refresh(uow, refresh_token=second.refresh_token, settings=settings)
        uow.commit()
    # The first token comes back: someone copied it. Everything from that sign-in dies.
    with db.uow() as uow:
        with pytest.raises(RefreshTokenReused) as err:
            service.refresh(uow, refresh_token=first.refresh_token, settings=settings)
        assert err.value.status == 401
        uow.commit()
    # The family's live token died with it: refused as revoked, not as reused (it never was).
    with db.uow() as uow, pytest.raises(InvalidRefreshToken) as revoked:
        service.refresh(uow, refresh_token=third.refresh_token, settings=settings)
    assert type(revoked.value) is InvalidRefreshToken and "revoked" in revoked.value.detail
    with db.engine.connect() as conn:
        live = conn.execute(
            select(func.count()).select_from(refresh_tokens).where(refresh_tokens.c.revoked_at.is_(None))
        ).scalar_one()
        assert live == 0
        assert "omr_" not in " ".join(conn.execute(select(refresh_tokens.c.token_hash)).scalars())


def test_other_sign_ins_survive_a_family_revocation(db: Database, settings: Settings) -> None:
    first = _sign_up(db, settings)
    with db.uow() as uow:
        other = service.sign_in(
            uow, identifier="ada@example.com", password="s3cret-pass", channel="app", settings=settings
        )
        rotated = service.refresh(uow, refresh_token=first.refresh_token, settings=settings)
        uow.commit()
    with db.uow() as uow:
        with pytest.raises(RefreshTokenReused):
            service.refresh(uow, refresh_token=first.refresh_token, settings=settings)
        uow.commit()
    with db.uow() as uow:
        assert service.refresh(uow, refresh_token=other.refresh_token, settings=settings).customer_id
        with pytest.raises(InvalidRefreshToken, match="revoked"):
            service.refresh(uow, refresh_token=rotated.refresh_token, settings=settings)


def test_refresh_rejects_unknown_and_expired(db: Database, settings: Settings) -> None:
    tokens = _sign_up(db, settings)
    with db.uow() as uow, pytest.raises(InvalidRefreshToken):
        service.refresh(uow, refresh_token="omr_nope", settings=settings)
    later = clock.now() + timedelta(seconds=settings.refresh_token_ttl_seconds + 1)
    clock.set_clock(lambda: later)
    with db.uow() as uow, pytest.raises(InvalidRefreshToken) as err:
        service.refresh(uow, refresh_token=tokens.refresh_token, settings=settings)
    assert "expired" in err.value.detail


def test_import_2000_customers_is_fast_and_shares_one_hash(db: Database, settings: Settings) -> None:
    shared = hash_password("demo-password")
    rows = [
        {
            "email": f"Shopper{i}@Example.com",
            "first_name": "Shopper",
            "last_name": str(i),
            "phone": f"+1415555{i:04d}" if i % 2 else None,
        }
        for i in range(2000)
    ]
    start = time.perf_counter()
    with db.uow() as uow:
        assert service.import_customers(uow, rows, password_hash=shared) == 2000
        uow.commit()
    assert time.perf_counter() - start < 3.0
    assert _count(db) == 2000
    with db.uow() as uow:
        tokens = service.sign_in(
            uow, identifier="shopper7@example.com", password="demo-password", channel="web", settings=settings
        )
        assert tokens.customer_id
        with pytest.raises(CustomerExists):
            service.import_customers(uow, [{"email": "shopper1@example.com"}])


def test_search_by_contact_and_prefix_with_cursor(db: Database) -> None:
    with db.uow() as uow:
        service.import_customers(
            uow,
            [
                {
                    "email": f"p{i}@example.com",
                    "last_name": "Lovelace" if i < 3 else "Hopper",
                    "phone": f"+1415555010{i}",
                }
                for i in range(6)
            ],
        )
        uow.commit()
    with db.uow() as uow:
        assert [c.email for c in service.search_customers(uow, SYSTEM, phone="(415) 555-0102").items] == [
            "p2@example.com"
        ]
        assert len(service.search_customers(uow, SYSTEM, email=" P4@EXAMPLE.COM").items) == 1
        page1 = service.search_customers(uow, SYSTEM, q="love", limit=2)
        assert len(page1.items) == 2 and page1.next_cursor
        page2 = service.search_customers(uow, SYSTEM, q="love", limit=2, cursor=page1.next_cursor)
        assert len(page2.items) == 1 and page2.next_cursor is None
        assert service.search_customers(uow, SYSTEM, q="%").items == []
