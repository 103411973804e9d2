"""Bulk onboarding against a real database: deterministic and probabilistic merges, the review
queue, rejected rows, and matching against profiles that already exist."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import func, select

from omnicommerce.customers import importing, linkage
from omnicommerce.customers.models import customer_merges, customers, identity_reviews
from omnicommerce.customers.schemas import ImportReport
from omnicommerce.platform.auth import SYSTEM
from omnicommerce.platform.db import Database
from tests.integration.customers.people import MAPPING, People, people


@pytest.fixture(autouse=True)
def _fresh_models() -> None:
    linkage.forget_models()


def _import(db: Database, data: People | str, *, source: str = "crm") -> ImportReport:
    text = data if isinstance(data, str) else data.csv()
    with db.uow() as uow:
        report = importing.import_rows(
            uow,
            SYSTEM,
            importing.read_rows(text, "csv"),
            mapping=importing.ColumnMapping.from_document(MAPPING),
            source=source,
        )
        uow.commit()
    return report


def _roots(db: Database) -> dict[str, str]:
    """pos_customer number → the root profile its row ended in."""
    from omnicommerce.customers.models import customer_identities

    with db.engine.connect() as conn:
        rows = conn.execute(
            select(customer_identities.c.value, func.coalesce(customers.c.merged_into, customers.c.id))
            .join(customers, customers.c.id == customer_identities.c.customer_id)
            .where(customer_identities.c.type == "pos_customer")
        )
        return {value: root for value, root in rows}


def test_file_with_planted_duplicates_and_households(db: Database) -> None:
    data = people(300, duplicates=30, households=10)
    report = _import(db, data)
    assert report.rows == 340 and report.rejected == 0
    roots = _roots(db)
    merged_twins = sum(
        roots[data.rows[a - 1]["Customer No"]] == roots[data.rows[b - 1]["Customer No"]]
        for a, b in data.duplicate_pairs
    )
    assert merged_twins == 30  # every planted duplicate found, though no identifier is shared
    households_merged = sum(
        roots[data.rows[a - 1]["Customer No"]] == roots[data.rows[b - 1]["Customer No"]]
        for a, b in data.household_pairs
    )
    assert households_merged == 0  # the partner shares surname, address and phone: never merged
    assert report.merged_probabilistic == 30
    assert len(set(roots.values())) == 310
    with db.engine.connect() as conn:
        evidence = [orjson.loads(e) for e in conn.execute(select(customer_merges.c.evidence)).scalars()]
    assert all(e["method"] == "probabilistic" and e["probability"] >= 0.95 for e in evidence)
    assert all(set(e["bits"]) >= {"prior", "given_name", "surname", "date_of_birth"} for e in evidence)


def test_rejected_rows_name_their_reasons(db: Database) -> None:
    data = people(3)
    data.rows[0]["E-mail"] = "not-an-email"
    data.rows[1]["E-mail"] = "test@test.com"  # on the default blocked list
    data.rows[2]["First Name"] = "Ada\x00"
    report = _import(db, data)
    reasons = {p.row: p.reasons for p in report.rejected_rows}
    assert report.rejected == 3 and report.created == 0
    assert "email" in reasons[1][0] and "valid email" in reasons[1][0]
    assert reasons[2] == ["email: the value is on the blocked list"]
    assert "control characters" in reasons[3][0]


def test_second_import_matches_existing_profiles(db: Database) -> None:
    first = people(200, seed=1, prefix="a")
    _import(db, first)
    # The same people from another system: new customer numbers and emails, one typo each.
    second = people(200, seed=1, prefix="b")
    for row in second.rows:
        row["Mobile"] = ""
        row["Last Name"] = row["Last Name"][:-1] + row["Last Name"][-1].upper()
    report = _import(db, second)
    assert report.created == 200
    assert report.merged_probabilistic + report.queued_for_review >= 195
    roots = _roots(db)
    same = sum(roots[f"a-{i}"] == roots[f"b-{i}"] for i in range(200))
    assert same == report.merged_probabilistic
    with db.engine.connect() as conn:
        pending = conn.execute(select(func.count()).select_from(identity_reviews)).scalar()
    assert pending == report.queued_for_review


def test_untrusted_source_only_proposes(db: Database) -> None:
    from omnicommerce.customers import identity
    from omnicommerce.customers.schemas import IdentityRulesDoc

    with db.uow() as uow:
        identity.set_rules(uow, SYSTEM, IdentityRulesDoc(sources={"partner-list": "untrusted"}))
        uow.commit()
    data = people(150, duplicates=10)
    report = _import(db, data, source="partner-list")
    assert report.merged_probabilistic == 0
    assert report.queued_for_review >= 10


def test_rejected_pair_is_never_proposed_again(db: Database) -> None:
    from omnicommerce.customers import identity, reviews
    from omnicommerce.customers.matching import MatchPair

    _import(db, people(150, households=1))
    with db.uow() as uow:
        pending = reviews.list_reviews(uow, SYSTEM, status="pending", cursor=None, limit=200).items
        review = pending[0]
        reviews.reject(uow, SYSTEM, review.id)
        uow.commit()
    again = MatchPair(review.right_id, review.left_id, review.probability, review.weight)  # either order
    matcher = _fitted(db)
    with db.uow() as uow:
        applied = linkage.apply(
            uow,
            identity.load_rules(uow),
            matcher,
            [linkage.Scored(again, "review")],
            source="crm",
            origin="test",
        )
        uow.commit()
    assert applied.reviews == 0
    with db.uow() as uow:
        after = reviews.list_reviews(uow, SYSTEM, status=None, cursor=None, limit=200).items
    assert [r.status for r in after if r.id == review.id] == ["rejected"]
    assert len(after) == len(pending)


def _fitted(db: Database):  # a matcher fitted on what is stored, as the live path uses
    with db.uow() as uow:
        matcher = linkage.fitted_matcher(uow)
    assert matcher is not None
    return matcher
