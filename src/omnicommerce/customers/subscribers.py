"""Orders, store sales and carts join the customer's event stream: each published event naming a
customer becomes a track event on its timeline. De-duplicated twice over: by event id in
``processed_events`` (the relay) and as the customer event's ``message_id``."""

from __future__ import annotations

from omnicommerce.customers import importing, ingestion, linkage
from omnicommerce.platform.auth import SYSTEM
from omnicommerce.platform.db import UnitOfWork
from omnicommerce.platform.outbox import Envelope, subscriber

# Published event type → the track event name the timeline shows (Segment's e-commerce spec names).
TRACKED = {
    "order.placed": "Order Placed",
    "order.paid": "Order Paid",
    "order.completed": "Order Completed",
    "order.cancelled": "Order Cancelled",
    "order.refunded": "Order Refunded",
    "order.units_cancelled": "Order Units Cancelled",
    "cart.created": "Cart Created",
    "cart.line_changed": "Cart Updated",
    "cart.claimed": "Cart Claimed",
    # What happens after the order, store visits among it: pickups and curbside arrivals.
    "fulfillment.shipped": "Order Shipped",
    "fulfillment.delivered": "Order Delivered",
    "pickup.collected": "Store Pickup",
    "curbside.arrived": "Curbside Arrival",
    "return.received": "Order Returned",
    # Engagement: messages to and from the customer and their service cases (ids and facts only;
    # the text stays in the engagement context, where an erasure reaches it).
    "message.sent": "Message Sent",
    "message.delivered": "Message Delivered",
    "message.failed": "Message Failed",
    "message.received": "Message Received",
    "case.opened": "Case Opened",
    "case.note_added": "Case Note Added",
    "case.pending": "Case Pending",
    "case.resumed": "Case Resumed",
    "case.resolved": "Case Resolved",
    "case.closed": "Case Closed",
    "case.reopened": "Case Reopened",
}


# Done to the customer, not by them: on the timeline, but not activity (last seen, channels used) —
# a weekly newsletter must not keep someone out of an "inactive for 90 days" segment.
NOT_ACTIVITY = frozenset(
    {
        "order.units_cancelled",
        "fulfillment.shipped",
        "fulfillment.delivered",
        "message.sent",
        "message.delivered",
        "message.failed",
        "case.note_added",
        "case.pending",
        "case.resumed",
        "case.resolved",
        "case.closed",
    }
)


def record_commerce_event(uow: UnitOfWork, env: Envelope) -> None:
    customer_id = env.payload.get("customer_id")
    if not customer_id:
        return  # anonymous carts and walk-in sales have no customer to attach to
    ingestion.record_internal(
        uow,
        message_id=env.id,
        name=TRACKED[env.type],
        customer_id=customer_id,
        channel=env.payload.get("channel"),
        timestamp=env.occurred_at,
        properties=env.payload,
        source=env.subject.split(".")[1],  # omni.<context>.<type>: the publishing context
        activity=env.type not in NOT_ACTIVITY,
    )


for _event_type in TRACKED:
    subscriber(_event_type, consumer=f"customers.timeline-{_event_type.replace('.', '-')}")(
        record_commerce_event
    )


@subscriber("customer.created", consumer="customers.match-new-profile")
def match_new_profile(uow: UnitOfWork, env: Envelope) -> None:
    """A new profile that shares no identifier with anyone may still be someone we know: score
    it against profiles sharing a blocking key (after commit, off the sign-up's hot path)."""
    linkage.match_new_profile(uow, env.payload["customer_id"])


@subscriber("customer.import_requested", consumer="customers.run-import")
def run_import(uow: UnitOfWork, env: Envelope) -> None:
    importing.run_queued_import(uow, SYSTEM, env.payload["import_id"])
