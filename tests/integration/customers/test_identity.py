"""The identity graph on real databases: profiles from anchors, deterministic merges under the
rules (priority, limits, blocked values, trusted sources), the journal, unmerge, and no duplicate
profiles for one email under a burst of parallel events."""

import threading

from sqlalchemy import func, select

from omnicommerce.customers import identity, ingestion
from omnicommerce.customers.models import customer_events, customer_identities, customer_merges, customers
from omnicommerce.customers.schemas import IdentityRulesDoc, IngestResult
from omnicommerce.platform.auth import SYSTEM, Principal, Scope
from omnicommerce.platform.db import Database

WEB = Principal("api_key", "key_web", frozenset({Scope.EVENTS_WRITE}))
KIOSK = Principal("api_key", "key_kiosk", frozenset({Scope.EVENTS_WRITE}))


def _ingest(db: Database, *events: dict, actor: Principal = WEB) -> IngestResult:
    with db.uow() as uow:
        result = ingestion.ingest(uow, actor, list(events))
        uow.commit()
    return result


def _identify(
    db: Database, message_id: str, actor: Principal = WEB, **fields
) -> tuple[str | None, list[str]]:
    result = _ingest(db, {"type": "identify", "messageId": message_id, **fields}, actor=actor)
    outcome = result.results[0]
    assert outcome.status == "accepted", outcome
    return outcome.customer_id, outcome.warnings


def _count(db: Database, table, *where) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def _owner(db: Database, itype: str, value: str) -> str | None:
    ids = customer_identities.c
    with db.engine.connect() as conn:
        return conn.execute(select(ids.customer_id).where(ids.type == itype, ids.value == value)).scalar()


def _set_rules(db: Database, **doc) -> None:
    with db.uow() as uow:
        identity.set_rules(uow, SYSTEM, IdentityRulesDoc(**doc))
        uow.commit()


def test_identify_with_email_of_a_and_anonymous_id_of_b_merges_b_into_a(db: Database) -> None:
    b, _ = _identify(db, "b1", anonymousId="anon-b", traits={"phone": "+14155550123"})
    _ingest(db, {"type": "track", "messageId": "b2", "anonymousId": "anon-b", "event": "Viewed"})
    a, _ = _identify(db, "a1", traits={"email": "ada@example.com"})
    assert a and b and a != b
    merged, warnings = _identify(db, "a2", anonymousId="anon-b", traits={"email": "ADA@example.com"})
    assert merged == a and warnings == []  # email outranks the anonymous id: A survives
    assert _owner(db, "phone", "+14155550123") == a and _owner(db, "anonymous_id", "anon-b") == a
    assert _count(db, customer_events, customer_events.c.customer_id == b) == 0
    assert _count(db, customer_events, customer_events.c.customer_id == a) == 4
    with db.engine.connect() as conn:
        assert conn.execute(select(customers.c.merged_into).where(customers.c.id == b)).scalar() == a
    with db.uow(readonly=True) as uow:
        journal = identity.merges(uow, SYSTEM, a)
    assert len(journal) == 1 and journal[0].merged_id == b and journal[0].survivor_id == a
    assert journal[0].evidence == {
        "message_id": "a2",
        "survivor_matched_by": ["email"],
        "merged_matched_by": ["anonymous_id"],
    }


def test_unmerge_gives_back_identities_and_events_by_origin_and_is_not_redone(db: Database) -> None:
    b, _ = _identify(db, "b1", anonymousId="anon-b", traits={"phone": "+14155550123"})
    a, _ = _identify(db, "a1", traits={"email": "ada@example.com"})
    _identify(db, "a2", anonymousId="anon-b", traits={"email": "ada@example.com"})
    # After the merge, the visitor's browser keeps sending: those events are B's by origin.
    _ingest(db, {"type": "page", "messageId": "b3", "anonymousId": "anon-b", "name": "Home"})
    with db.uow() as uow:
        result = identity.unmerge(uow, SYSTEM, b)
        uow.commit()
    assert (result.survivor_id, result.identities_moved, result.events_moved) == (a, 2, 2)
    assert _owner(db, "anonymous_id", "anon-b") == b and _owner(db, "phone", "+14155550123") == b
    assert _owner(db, "email", "ada@example.com") == a
    ev = customer_events.c
    with db.engine.connect() as conn:
        by_customer = dict(conn.execute(select(ev.message_id, ev.customer_id)).all())
    assert by_customer == {"b1": b, "b3": b, "a1": a, "a2": a}
    # The same evidence again does not merge them a second time: an admin said they differ.
    customer_id, warnings = _identify(db, "a4", anonymousId="anon-b", traits={"email": "ada@example.com"})
    assert customer_id == a and any("undone" in w for w in warnings)
    assert _count(db, customer_merges, customer_merges.c.undone_at.is_(None)) == 0


def test_unmerge_of_a_profile_brings_what_was_merged_into_it(db: Database) -> None:
    c, _ = _identify(db, "c1", anonymousId="anon-c", traits={"loyalty_id": "L-1"})
    b, _ = _identify(db, "b1", anonymousId="anon-b", traits={"phone": "+14155550123"})
    _identify(db, "b2", anonymousId="anon-c", traits={"phone": "+14155550123"})  # C into B (phone > loyalty)
    a, _ = _identify(db, "a1", traits={"email": "ada@example.com", "phone": "+14155550123"})
    assert a == b  # the phone found B; the email joined it
    z, _ = _identify(db, "z1", userId="u-z")
    _identify(db, "z2", userId="u-z", anonymousId="anon-b")  # B (with C inside) into Z
    assert _owner(db, "loyalty_id", "L-1") == z
    with db.uow() as uow:
        result = identity.unmerge(uow, SYSTEM, b)
        uow.commit()
    assert result.profiles_moved == 1  # C follows B out of Z
    assert _owner(db, "loyalty_id", "L-1") == b and _owner(db, "anonymous_id", "anon-c") == b
    assert _owner(db, "user_id", "u-z") == z
    with db.engine.connect() as conn:
        merged_into = dict(conn.execute(select(customers.c.id, customers.c.merged_into)).all())
    assert merged_into[c] == b and merged_into[b] is None and merged_into[z] is None


def test_family_tablet_does_not_merge_two_adults(db: Database) -> None:
    tablet = {"device": {"id": "tablet-1"}}
    adult1, _ = _identify(db, "f1", traits={"email": "pat@example.com"}, context=tablet, anonymousId="t-a")
    adult2, warnings = _identify(
        db, "f2", traits={"email": "sam@example.com"}, context=tablet, anonymousId="t-b"
    )
    assert adult1 and adult2 and adult1 != adult2
    assert warnings
    assert _owner(db, "email", "sam@example.com") == adult2
    assert _owner(db, "device_id", "tablet-1") == adult1  # the shared device stays where it was
    assert _count(db, customer_merges) == 0
    # Two known adults meeting on one device: the email limit (1) refuses the merge.
    again, warnings = _identify(db, "f3", traits={"email": "sam@example.com"}, anonymousId="t-a")
    assert again == adult2 and any("limit" in w for w in warnings)
    assert _count(db, customer_merges) == 0


def test_device_limit_caps_identifiers_per_profile(db: Database) -> None:
    _set_rules(db, limits={"device_id": 2})
    customer_id, _ = _identify(db, "d0", userId="u-1")
    assert customer_id is not None
    warnings: list[str] = []
    for n in range(4):
        _, w = _identify(db, f"d{n + 1}", userId="u-1", context={"device": {"id": f"dev-{n}"}})
        warnings += w
    assert _count(db, customer_identities, customer_identities.c.type == "device_id") == 2
    assert sum("limit" in w for w in warnings) == 2


def test_blocked_values_never_link_or_merge(db: Database) -> None:
    a, _ = _identify(db, "x1", userId="u-a", traits={"email": "test@test.com"})
    b, warnings = _identify(db, "x2", userId="u-b", traits={"email": "TEST@test.com"})
    assert a != b and any("blocked" in w for w in warnings)
    assert _count(db, customer_identities, customer_identities.c.type == "email") == 0
    only_blocked, _ = _identify(db, "x3", anonymousId="v", traits={"email": "test@test.com"})
    assert only_blocked is None  # nothing left that names a person


def test_untrusted_source_links_but_never_merges(db: Database) -> None:
    _set_rules(db, sources={"key_kiosk": "untrusted"})
    b, _ = _identify(db, "k1", anonymousId="anon-k", traits={"phone": "+14155550123"})
    a, _ = _identify(db, "k2", traits={"email": "ada@example.com"})
    customer_id, warnings = _identify(
        db, "k3", actor=KIOSK, anonymousId="anon-k", traits={"email": "ada@example.com"}
    )
    assert customer_id == a and any("not trusted" in w for w in warnings)
    assert _count(db, customer_merges) == 0 and _owner(db, "anonymous_id", "anon-k") == b
    customer_id, _ = _identify(db, "k4", anonymousId="anon-k", traits={"email": "ada@example.com"})
    assert customer_id == a and _owner(db, "anonymous_id", "anon-k") == a  # a trusted source may


def test_existing_account_is_found_by_email_not_duplicated(db: Database) -> None:
    from omnicommerce.customers import service

    with db.uow() as uow:
        account = service.find_or_create_by_email(uow, email="guest@example.com", channel="web")
        uow.commit()
    customer_id, _ = _identify(db, "g1", anonymousId="g", traits={"email": "Guest@Example.com"})
    assert customer_id == account
    by_id, _ = _identify(db, "g2", userId=account, anonymousId="g2")
    assert by_id == account
    assert _count(db, customers) == 1


def test_parallel_events_with_one_email_make_one_profile(db: Database) -> None:
    threads = 8
    barrier = threading.Barrier(threads)
    found: list[str | None] = []
    errors: list[BaseException] = []

    def send(n: int) -> None:
        try:
            barrier.wait()
            result = _ingest(
                db,
                {
                    "type": "identify",
                    "messageId": f"burst-{n}",
                    "anonymousId": f"burst-anon-{n}",
                    "traits": {"email": "burst@example.com"},
                },
            )
            found.append(result.results[0].customer_id)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    workers = [threading.Thread(target=send, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    assert len(found) == threads and len(set(found)) == 1
    assert _count(db, customers) == 1
    assert _count(db, customer_identities, customer_identities.c.type == "anonymous_id") == threads


def test_parallel_merges_leave_one_consistent_profile(db: Database) -> None:
    """Six visitors' profiles, then six parallel identifies naming them all as one email: every
    identity and event ends on one live profile, and each merge is journaled once."""
    _set_rules(db, limits={"phone": 10})
    visitors = 6
    for n in range(visitors):
        _identify(db, f"v{n}", anonymousId=f"anon-{n}", traits={"phone": f"+1415555{n:04d}"})
    barrier = threading.Barrier(visitors)
    errors: list[BaseException] = []

    def send(n: int) -> None:
        try:
            barrier.wait()
            with db.uow() as uow:
                event = {"type": "identify", "messageId": f"m{n}", "anonymousId": f"anon-{n}"}
                event["traits"] = {"email": "one@example.com"}
                ingestion.retry_deadlocks(uow, lambda: ingestion.ingest(uow, WEB, [event]))
                uow.commit()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    workers = [threading.Thread(target=send, args=(n,)) for n in range(visitors)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    survivor = _owner(db, "email", "one@example.com")
    c, ids, ev = customers.c, customer_identities.c, customer_events.c
    with db.engine.connect() as conn:
        live = set(conn.execute(select(c.id).where(c.merged_into.is_(None))).scalars())
        owners = set(conn.execute(select(ids.customer_id)).scalars())
        event_owners = set(conn.execute(select(ev.customer_id)).scalars())
        merged = conn.execute(select(c.merged_into).where(c.merged_into.is_not(None))).scalars().all()
    assert live == {survivor}
    assert owners == {survivor} and event_owners == {survivor}
    assert merged == [survivor] * (len(merged)) and len(merged) == _count(db, customer_merges)
    assert _count(db, customer_identities) == 2 * visitors + 1


def test_a_redelivered_order_event_counts_once(db: Database) -> None:
    from datetime import UTC, datetime

    from omnicommerce.customers import subscribers, traits
    from omnicommerce.platform.outbox import Envelope

    customer_id, _ = _identify(db, "o1", userId="u-o")
    assert customer_id is not None
    facts = {
        "order_id": "ord_1",
        "channel": "web",
        "customer_id": customer_id,
        "currency": "USD",
        "total": 900,
    }
    env = Envelope("evt_1", "order.placed", 1, "omni.orders.order.placed", datetime.now(UTC), facts)
    for _ in range(2):  # at-least-once delivery: the same event twice
        with db.uow() as uow:
            subscribers.record_commerce_event(uow, env)
            uow.commit()
    with db.uow(readonly=True) as uow:
        figures = traits.profile_traits(uow, customer_id)
    assert (figures["order_count"], figures["lifetime_value"], figures["event_count"]) == (1, 900, 2)
    assert _count(db, customer_events, customer_events.c.message_id == "evt_1") == 1


def test_parallel_batches_claiming_the_same_new_identifiers_in_opposite_orders_never_deadlock(
    db: Database,
) -> None:
    """Ten known users get a new email each from eight parallel requests, every request in its
    own order. Identifiers are locked in one global order before any is claimed, so no request
    waits on another that waits on it (on PostgreSQL such a cycle is a deadlock error; no retry
    here to hide it): every email ends with its user, once."""
    people = 10
    _ingest(
        db,
        *(
            {"type": "track", "messageId": f"k{n}", "userId": f"u-{n}", "event": "Seen"}
            for n in range(people)
        ),
    )
    threads = 8
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def send(t: int) -> None:
        order = list(range(people))
        order = order[t % people :] + order[: t % people]
        if t % 2:
            order.reverse()
        events = [
            {
                "type": "identify",
                "messageId": f"e{t}-{n}",
                "userId": f"u-{n}",
                "traits": {"email": f"p{n}@example.com"},
            }
            for n in order
        ]
        try:
            barrier.wait()
            with db.uow() as uow:
                ingestion.ingest(uow, WEB, events, commit_profiles=uow.commit)
                uow.commit()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    workers = [threading.Thread(target=send, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    assert _count(db, customers) == people
    for n in range(people):
        assert _owner(db, "email", f"p{n}@example.com") == _owner(db, "user_id", f"u-{n}")
