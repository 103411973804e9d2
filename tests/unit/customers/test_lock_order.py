"""The one global order identifiers are locked in before a request claims any of them."""

import random

from hypothesis import given
from hypothesis import strategies as st

from omnicommerce.customers.domain import IDENTIFIER_TYPES, Identifier
from omnicommerce.customers.repository import identifier_lock_keys

identifiers = st.builds(Identifier, st.sampled_from(IDENTIFIER_TYPES), st.text(min_size=1, max_size=40))


@given(st.lists(identifiers, max_size=30), st.randoms(use_true_random=False))
def test_every_request_locks_the_same_identifiers_in_the_same_order(
    idents: list[Identifier], rnd: random.Random
) -> None:
    shuffled = list(idents)
    rnd.shuffle(shuffled)
    keys = identifier_lock_keys(idents)
    assert keys == identifier_lock_keys(shuffled)  # whatever order the events named them in
    assert keys == sorted(set(keys))  # ascending, each once
    assert all(-(2**63) <= k < 2**63 for k in keys)  # PostgreSQL's bigint advisory keys


def test_the_key_depends_on_type_and_value() -> None:
    [email] = identifier_lock_keys([Identifier("email", "a@example.com")])
    [user] = identifier_lock_keys([Identifier("user_id", "a@example.com")])
    assert email != user
    assert identifier_lock_keys([Identifier("email", "a@example.com")]) == [email]  # stable
