"""The role table: what each staff role may do, and which roles are bound to a store."""

from __future__ import annotations

import pytest

from omnicommerce.platform.auth import Scope
from omnicommerce.platform.staff.domain import (
    ROLE_SCOPES,
    InvalidStaff,
    Role,
    WeakPassword,
    check_binding,
    check_password,
    normalise_email,
    scopes_for,
)

WRITES = frozenset(s for s in Scope if not s.endswith(":read"))


def test_every_role_has_a_row_and_only_admin_holds_the_admin_scope() -> None:
    assert set(ROLE_SCOPES) == set(Role)
    assert scopes_for("admin") == {Scope.ADMIN}
    assert [r for r in Role if Scope.ADMIN in ROLE_SCOPES[r]] == [Role.ADMIN]


def test_an_analyst_reads_everything_and_writes_nothing() -> None:
    analyst = scopes_for("analyst")
    assert analyst == {s for s in Scope if s.endswith(":read")}
    assert {Scope.ORDERS_READ, Scope.CUSTOMERS_READ, Scope.SEGMENTS_READ, Scope.INVENTORY_READ} <= analyst
    assert not analyst & WRITES


def test_a_store_associate_runs_a_store_but_sees_no_customer_base_or_marketing() -> None:
    associate = scopes_for("store_associate")
    assert {
        Scope.INVENTORY_WRITE,
        Scope.ORDERS_WRITE,
        Scope.CARTS_WRITE,
        Scope.FULFILLMENT_WRITE,
    } <= associate
    assert not associate & {
        Scope.CUSTOMERS_READ,
        Scope.CUSTOMERS_WRITE,
        Scope.SEGMENTS_READ,
        Scope.PRIVACY_WRITE,
    }
    assert not associate & {Scope.CATALOG_WRITE, Scope.PRICES_WRITE}


def test_a_service_agent_sells_and_refunds_for_customers_but_moves_no_stock() -> None:
    agent = scopes_for("service_agent")
    assert {Scope.CUSTOMERS_READ, Scope.CUSTOMERS_WRITE, Scope.CARTS_WRITE, Scope.ORDERS_WRITE} <= agent
    assert not agent & {
        Scope.INVENTORY_WRITE,
        Scope.FULFILLMENT_WRITE,
        Scope.PRIVACY_WRITE,
        Scope.PRICES_WRITE,
    }


def test_a_marketer_builds_segments_from_customers_and_touches_no_order() -> None:
    marketer = scopes_for("marketer")
    assert {Scope.CUSTOMERS_READ, Scope.SEGMENTS_READ, Scope.SEGMENTS_WRITE} <= marketer
    assert not marketer & {Scope.CUSTOMERS_WRITE, Scope.ORDERS_READ, Scope.ORDERS_WRITE, Scope.CARTS_WRITE}


@pytest.mark.parametrize(
    ("role", "location", "channel", "ok"),
    [
        (Role.STORE_ASSOCIATE, "store-007", None, True),
        (Role.STORE_ASSOCIATE, "store-007", "pos", True),
        (Role.STORE_ASSOCIATE, None, "pos", False),
        (Role.ANALYST, None, None, True),
        (Role.ANALYST, "store-007", None, False),
        (Role.SERVICE_AGENT, None, "call_center", False),
        (Role.ADMIN, "store-007", "pos", False),
    ],
)
def test_only_store_associates_are_bound_to_a_store(
    role: Role, location: str | None, channel: str | None, ok: bool
) -> None:
    if ok:
        check_binding(role, location, channel)
    else:
        with pytest.raises(InvalidStaff):
            check_binding(role, location, channel)


def test_passwords_need_twelve_characters_and_emails_compare_case_blind() -> None:
    check_password("twelve chars")
    with pytest.raises(WeakPassword):
        check_password("elevenchars")
    assert normalise_email("  Ada.Lovelace@Example.ORG ") == "ada.lovelace@example.org"
