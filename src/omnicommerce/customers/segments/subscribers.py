"""Incremental segment membership: the profiles an event touches are re-evaluated against every
segment, in the event's own transaction with its ``processed_events`` row (de-duplicated by event
id through the relay, like every subscriber).

Commerce events (orders, carts) reach the customer timeline through the customers context's own
subscriber; delivery order between two consumers is not guaranteed (NATS runs them apart), so this
one records the event on the timeline first — the same idempotent call, keyed by the event id —
and then evaluates against a timeline that certainly holds it.
"""

from __future__ import annotations

from omnicommerce.customers.segments import service
from omnicommerce.customers.subscribers import TRACKED, record_commerce_event
from omnicommerce.platform.db import UnitOfWork
from omnicommerce.platform.outbox import Envelope, subscriber

# Event type → the payload field listing the profiles it changed.
PROFILE_LISTS = {
    "customer.events_ingested": "customer_ids",
    "privacy.erasure_completed": "customer_ids",  # erased profiles leave (or are re-judged on what is left)
}
# Event type → the payload fields naming the profiles it changed.
PROFILE_FIELDS = {
    "customer.created": ("customer_id",),
    "customer.merged": ("survivor_id", "merged_id"),
    "customer.unmerged": ("customer_id", "survivor_id"),
}


def reevaluate_listed_profiles(uow: UnitOfWork, env: Envelope) -> None:
    service.reevaluate_customers(uow, [str(c) for c in env.payload.get(PROFILE_LISTS[env.type], [])])


def reevaluate_named_profiles(uow: UnitOfWork, env: Envelope) -> None:
    service.reevaluate_customers(uow, [str(env.payload.get(f) or "") for f in PROFILE_FIELDS[env.type]])


def reevaluate_after_commerce_event(uow: UnitOfWork, env: Envelope) -> None:
    customer_id = env.payload.get("customer_id")
    if not customer_id:
        return  # an anonymous cart or a walk-in sale belongs to no profile
    record_commerce_event(uow, env)
    service.reevaluate_customers(uow, [customer_id])


for _event_type in PROFILE_LISTS:
    subscriber(_event_type, consumer=f"segments.reevaluate-{_event_type.replace('.', '-')}")(
        reevaluate_listed_profiles
    )
for _event_type in PROFILE_FIELDS:
    subscriber(_event_type, consumer=f"segments.reevaluate-{_event_type.replace('.', '-')}")(
        reevaluate_named_profiles
    )
for _event_type in TRACKED:
    subscriber(_event_type, consumer=f"segments.reevaluate-{_event_type.replace('.', '-')}")(
        reevaluate_after_commerce_event
    )
