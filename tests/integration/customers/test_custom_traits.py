"""Custom traits on real databases: what identify calls (and imported ``trait:`` columns) say
about a person is kept per account, the latest event wins whatever order events arrive in, and
a merge shows them together while an unmerge splits them back."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omnicommerce.customers import identity, importing, ingestion, traits
from omnicommerce.customers.schemas import IngestResult
from omnicommerce.platform.auth import SYSTEM, Principal, Scope
from omnicommerce.platform.db import Database

WEB = Principal("api_key", "key_web", frozenset({Scope.EVENTS_WRITE}))
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
_people = itertools.count()


def _ingest(db: Database, *events: dict[str, Any]) -> IngestResult:
    with db.uow() as uow:
        result = ingestion.ingest(uow, WEB, list(events), commit_profiles=uow.commit)
        uow.commit()
    return result


def _identify(user: str, message_id: str, at: datetime, **custom: Any) -> dict[str, Any]:
    return {
        "type": "identify",
        "messageId": message_id,
        "userId": user,
        "timestamp": at.isoformat(),
        "traits": custom,
    }


def _custom(db: Database, customer_id: str) -> dict[str, Any]:
    with db.uow() as uow:
        root = identity.roots_of(uow, [customer_id])[customer_id]
        return traits.custom_traits(uow, traits.profile_accounts(uow, root))


def test_identify_traits_are_kept_without_the_identifiers(db: Database) -> None:
    result = _ingest(
        db,
        _identify(
            "u-ada",
            "t1",
            T0,
            email="ada@example.com",
            phone="+14155550100",
            plan="pro",
            address={"city": "London"},
            newsletter=False,
        ),
    )
    customer_id = result.results[0].customer_id
    assert customer_id is not None
    assert _custom(db, customer_id) == {"address": {"city": "London"}, "newsletter": False, "plan": "pro"}


def test_an_older_event_arriving_late_never_overwrites_a_newer_value(db: Database) -> None:
    customer_id = (
        _ingest(db, _identify("u-late", "n1", T0 + timedelta(hours=1), plan="pro")).results[0].customer_id
    )
    assert customer_id is not None
    _ingest(db, _identify("u-late", "o1", T0, plan="free", tier="gold"))  # happened earlier, came later
    assert _custom(db, customer_id) == {"plan": "pro", "tier": "gold"}
    _ingest(db, _identify("u-late", "n2", T0 + timedelta(hours=2), plan="team"))
    assert _custom(db, customer_id)["plan"] == "team"
    # Within one request as well: the later event wins wherever it sits in the batch.
    _ingest(
        db,
        _identify("u-late", "b2", T0 + timedelta(hours=4), plan="enterprise"),
        _identify("u-late", "b1", T0 + timedelta(hours=3), plan="starter"),
    )
    assert _custom(db, customer_id)["plan"] == "enterprise"


def test_traits_too_large_to_keep_are_warnings_and_the_rest_is_kept(db: Database) -> None:
    result = _ingest(db, _identify("u-big", "big1", T0, bio="x" * 5000, **{"n" * 101: 1}, plan="pro"))
    outcome = result.results[0]
    assert outcome.status == "accepted"
    assert any("'bio' not kept" in w for w in outcome.warnings)
    assert any("trait name has 1 to 100 characters" in w for w in outcome.warnings)
    assert outcome.customer_id is not None
    assert _custom(db, outcome.customer_id) == {"plan": "pro"}


def test_a_merge_shows_both_accounts_traits_and_an_unmerge_splits_them(db: Database) -> None:
    b = _ingest(
        db,
        {
            "type": "identify",
            "messageId": "mb",
            "anonymousId": "anon-b",
            "timestamp": T0.isoformat(),
            "traits": {"phone": "+14155550123", "plan": "free", "shoe_size": 42},
        },
    ).results[0]
    a = _ingest(
        db,
        {
            "type": "identify",
            "messageId": "ma",
            "timestamp": (T0 + timedelta(hours=1)).isoformat(),
            "traits": {"email": "ada@example.com", "plan": "pro"},
        },
    ).results[0]
    merged = _ingest(
        db,
        {
            "type": "identify",
            "messageId": "mm",
            "anonymousId": "anon-b",
            "traits": {"email": "ada@example.com"},
        },
    ).results[0]
    assert a.customer_id and b.customer_id and merged.customer_id == a.customer_id
    assert _custom(db, a.customer_id) == {"plan": "pro", "shoe_size": 42}

    with db.uow() as uow:
        identity.unmerge(uow, SYSTEM, b.customer_id)
        uow.commit()

    assert _custom(db, a.customer_id) == {"plan": "pro"}
    assert _custom(db, b.customer_id) == {"plan": "free", "shoe_size": 42}


def test_imported_trait_columns_are_custom_traits(db: Database) -> None:
    text = "pos_customer,email,tier\nP-1,grace@example.com,gold\n"
    with db.uow() as uow:
        report = importing.import_rows(
            uow,
            SYSTEM,
            importing.read_rows(text, "csv"),
            mapping=importing.ColumnMapping.from_document(
                {"columns": {"pos_customer": "pos_customer", "email": "email", "tier": "trait:tier"}}
            ),
            source="crm",
        )
        uow.commit()
    assert report.created == 1
    result = _ingest(db, _identify("u-grace", "g1", T0, email="grace@example.com", vip=True))
    assert result.results[0].customer_id is not None
    assert _custom(db, result.results[0].customer_id) == {"tier": "gold", "vip": True}


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    values=st.lists(st.sampled_from(["free", "pro", "team", None]), min_size=1, max_size=8),
    order=st.randoms(use_true_random=False),
    split=st.integers(min_value=1, max_value=8),
)
def test_the_latest_event_wins_in_any_arrival_order(
    db: Database, values: list[str | None], order: Any, split: int
) -> None:
    """Statements at distinct times, sent shuffled in requests of ``split`` events: the kept value
    is always the one of the latest event."""
    user = f"u-prop-{next(_people)}"
    statements = [
        _identify(user, f"{user}-{n}", T0 + timedelta(minutes=n), plan=value)
        for n, value in enumerate(values)
    ]
    shuffled = list(statements)
    order.shuffle(shuffled)
    customer_id = None
    for start in range(0, len(shuffled), split):
        result = _ingest(db, *shuffled[start : start + split])
        customer_id = customer_id or result.results[0].customer_id
    assert customer_id is not None
    assert _custom(db, customer_id) == {"plan": values[-1]}
