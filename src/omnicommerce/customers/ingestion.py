"""Event ingestion: the own schema (``POST /api/v1/events``), the Segment spec and the events
other contexts publish, into one stream of customer events. Never commits.

A request has a fixed handful of statements whatever its size: one read of the message ids
already stored, one read of every identifier's owner, one multi-row
``INSERT … ON CONFLICT (message_id) DO NOTHING``. Only events that change the identity graph
(a new identifier next to a known one, a new person, two profiles meeting) take the slower path
through :func:`identity.resolve`, in the order they were sent.

Two steps, which the entrypoint may commit separately (``commit_profiles``): first what the
events say about people — the identity graph, names, matching attributes, custom traits — then
the events themselves with their computed traits. A new identifier claimed in the first step
is visible to concurrent requests as soon as that short step commits, instead of holding every
request that carries the same new person until this one has stored all its events.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import orjson
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.exc import OperationalError

from omnicommerce.customers import identity, linkage, traits
from omnicommerce.customers import repository as repo
from omnicommerce.customers.domain import (
    ANCHOR_TYPES,
    IDENTIFIER_TYPES,
    Identifier,
    IdentityRules,
    normalize_identifier,
)
from omnicommerce.customers.events import CustomerEventsIngested
from omnicommerce.customers.privacy.service import suppressed
from omnicommerce.customers.schemas import EventIn, EventResult, IngestResult
from omnicommerce.platform import clock
from omnicommerce.platform.auth import Principal, Scope
from omnicommerce.platform.clock import as_utc
from omnicommerce.platform.db import UnitOfWork
from omnicommerce.platform.errors import InvalidInput
from omnicommerce.platform.ids import new_id

MAX_BATCH = 1000
MAX_FUTURE = timedelta(hours=24)  # beyond this a device clock is broken, not skewed
# Segment's library channels, read as our sales channels.
CHANNEL_ALIASES = {"browser": "web", "mobile": "app", "server": None}
# Where identifiers sit in a Segment payload's traits (either spelling).
TRAIT_IDENTIFIERS = {
    "email": "email",
    "phone": "phone",
    "loyalty_id": "loyalty_id",
    "loyaltyId": "loyalty_id",
    "pos_customer_number": "pos_customer",
    "posCustomerNumber": "pos_customer",
    "marketplace_buyer_id": "marketplace_buyer",
    "marketplaceBuyerId": "marketplace_buyer",
}
_EVENT = TypeAdapter(EventIn)
T = TypeVar("T")


class BatchTooLarge(InvalidInput):
    code = "batch-too-large"
    title = "Too many events in one request"


class InvalidEvent(InvalidInput):
    code = "invalid-event"
    title = "Invalid event"


@dataclass(slots=True)
class _Prepared:
    index: int
    event: EventIn
    message_id: str
    timestamp: datetime
    channel: str | None
    identifiers: list[Identifier]
    warnings: list[str] = field(default_factory=list)
    customer_id: str | None = None
    origin_id: str | None = None


def ingest(
    uow: UnitOfWork,
    actor: Principal,
    raw_events: Sequence[Any],
    *,
    sent_at: datetime | None = None,
    context: Mapping[str, Any] | None = None,
    commit_profiles: Callable[[], None] | None = None,
) -> IngestResult:
    """Validate each event on its own (one bad event never drops the others), de-duplicate by
    message id, resolve identities and store the rest with their own timestamp.

    ``commit_profiles``: run once the profiles are settled and before the events are stored, when
    the first step wrote anything — an entrypoint passes its ``uow.commit`` (see the module
    docstring); without it the request is one transaction."""
    actor.require(Scope.EVENTS_WRITE)
    if len(raw_events) > MAX_BATCH:
        raise BatchTooLarge(f"at most {MAX_BATCH} events per request; split the batch")
    received = clock.now()
    results: dict[int, EventResult] = {}
    prepared = []
    for index, raw in enumerate(raw_events):
        outcome = _prepare(index, raw, actor, received, sent_at, context)
        if isinstance(outcome, EventResult):
            results[index] = outcome
        else:
            prepared.append(outcome)
    fresh = _drop_suppressed(uow, _drop_duplicates(uow, prepared, results), results)
    moved: list[traits.Activity] = []
    changed = _attribute(uow, fresh, source=actor.id, moved=moved)
    changed |= _record_identifies(uow, [p for p in fresh if p.event.type == "identify"], actor.id)
    if changed and commit_profiles is not None:
        # Visitors' earlier events moved with the profiles: count them in the same commit, so a
        # second step rolled back and run again does not lose them.
        traits.record_activity(uow, moved)
        moved = []
        commit_profiles()
    _hold_profiles(uow, fresh)
    stored = repo.insert_events(uow.conn, [_row(p, actor.id, received) for p in fresh])
    traits.record_activity(
        uow,
        moved
        + [(p.origin_id, p.timestamp, p.channel) for p in fresh if p.origin_id and p.message_id in stored],
    )
    for p in fresh:
        status = "accepted" if p.message_id in stored else "duplicate"  # a concurrent request stored it
        results[p.index] = EventResult(
            index=p.index,
            message_id=p.message_id,
            status=status,
            customer_id=p.customer_id,
            warnings=p.warnings,
        )
    if stored:
        customer_ids = sorted({p.customer_id for p in fresh if p.customer_id and p.message_id in stored})
        uow.emit(CustomerEventsIngested(source=actor.id, accepted=len(stored), customer_ids=customer_ids))
    ordered = [results[i] for i in range(len(raw_events))]
    return IngestResult(
        success=True,
        accepted=sum(r.status == "accepted" for r in ordered),
        duplicates=sum(r.status == "duplicate" for r in ordered),
        rejected=sum(r.status == "rejected" for r in ordered),
        results=ordered,
    )


def retry_deadlocks(uow: UnitOfWork, work: Callable[[], T]) -> T:
    """Run ``work`` (an ingestion) again from the start when the database chose it as a deadlock
    victim. Concurrent batches claim identifiers in their own event order, so on PostgreSQL two
    of them can wait on each other; the rolled-back attempt changed nothing and message ids make
    the retry safe. For entrypoints, which own the unit of work."""
    for attempt in range(DEADLOCK_RETRIES + 1):
        try:
            return work()
        except OperationalError as exc:
            if attempt == DEADLOCK_RETRIES or getattr(exc.orig, "sqlstate", None) not in RETRYABLE_SQLSTATES:
                raise
            uow.rollback()
    raise AssertionError("unreachable")


DEADLOCK_RETRIES = 3
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock detected, serialization failure


def record_internal(
    uow: UnitOfWork,
    *,
    message_id: str,
    name: str,
    customer_id: str,
    channel: str | None,
    timestamp: datetime,
    properties: Mapping[str, Any],
    source: str,
    activity: bool = True,
) -> None:
    """An event another context published (an order, a cart) joins the customer's timeline.
    Its origin is the account it names, so an unmerge sends it back with that account.
    ``activity=False``: something done *to* the customer (a message sent, a parcel shipped) — on
    the timeline, but not counted as them being seen (last seen, channels used)."""
    root = repo.hold_roots(uow.conn, [customer_id]).get(customer_id)
    row = {
        "id": new_id("cev"),
        "message_id": message_id,
        "type": "track",
        "name": name,
        "customer_id": root,
        "origin_customer_id": customer_id,
        "anonymous_id": None,
        "user_id": customer_id,
        "channel": channel,
        "source": source,
        "timestamp": timestamp,
        "received_at": clock.now(),
        "payload": orjson.dumps({"properties": dict(properties)}).decode(),
    }
    if repo.insert_events(uow.conn, [row]):  # once per event, however often it is delivered
        if activity:
            traits.record_activity(uow, [(customer_id, timestamp, channel)])
        traits.record_order(uow, account=customer_id, name=name, facts=properties, at=timestamp)


# --- steps ---------------------------------------------------------------------------------------


def _prepare(
    index: int,
    raw: Any,
    actor: Principal,
    received: datetime,
    batch_sent_at: datetime | None,
    batch_context: Mapping[str, Any] | None,
) -> _Prepared | EventResult:
    message_id = raw.get("messageId") if isinstance(raw, dict) else None
    if (problem := _unstorable(raw)) is not None:
        return _rejected(index, message_id, [{"field": "", "message": problem}])
    try:
        event = _EVENT.validate_python(raw)
        _check_shape(event)
        timestamp = _corrected_timestamp(event, received, batch_sent_at)
    except ValidationError as exc:
        return _rejected(index, message_id, [_field_error(e) for e in exc.errors()])
    except InvalidInput as exc:
        return _rejected(
            index, message_id, [{"field": str(exc.extensions.get("field", "")), "message": exc.detail}]
        )
    if batch_context:
        event.context = {**batch_context, **event.context}
    identifiers, warnings = _identifiers(event)
    if not identifiers:
        message = "every event needs userId or anonymousId (or an email, phone or other identifier)"
        return _rejected(index, message_id, [{"field": "userId", "message": "; ".join([message, *warnings])}])
    return _Prepared(
        index=index,
        event=event,
        message_id=event.message_id or f"gen-{uuid.uuid4()}",
        timestamp=timestamp,
        channel=_channel(event, actor),
        identifiers=identifiers,
        warnings=warnings,
    )


def _unstorable(raw: Any) -> str | None:
    """Text no database column can hold: lone UTF-16 surrogates, NUL characters (PostgreSQL)."""
    try:
        encoded = orjson.dumps(raw)
    except orjson.JSONEncodeError:
        return "the event contains text that is not valid Unicode"
    if b"\\u0000" in encoded:
        return "the event contains a NUL character"
    return None


def _rejected(index: int, message_id: Any, errors: list[dict[str, str]]) -> EventResult:
    mid = message_id if isinstance(message_id, str) and len(message_id) <= 200 else None
    return EventResult(index=index, message_id=mid, status="rejected", errors=errors)


def _field_error(err: Mapping[str, Any]) -> dict[str, str]:
    return {"field": ".".join(str(p) for p in err.get("loc", ())), "message": str(err.get("msg", "invalid"))}


def _check_shape(event: EventIn) -> None:
    """What each type needs beyond the common fields (the Segment spec's rules)."""
    if event.type == "track" and not event.event:
        raise InvalidInput("a track event needs its event name in 'event'", field="event")
    if event.type == "alias" and not (event.previous_id and event.user_id):
        raise InvalidInput("an alias event needs previousId and userId", field="previousId")
    if event.type == "group" and not event.group_id:
        raise InvalidInput("a group event needs groupId", field="groupId")


def _corrected_timestamp(event: EventIn, received: datetime, batch_sent_at: datetime | None) -> datetime:
    """The event's own time, corrected for the device clock's skew when the device said when
    it sent it (Segment's rule: timestamp + (received - sentAt)); arrival time when it gave none."""
    if event.timestamp is None:
        return received
    timestamp = as_utc(event.timestamp)
    sent = event.sent_at or batch_sent_at
    if sent is not None:
        try:
            timestamp += received - as_utc(sent)
        except OverflowError as exc:
            raise InvalidInput("timestamp and sentAt are too far apart to be real", field="sentAt") from exc
    if timestamp > received + MAX_FUTURE:
        raise InvalidInput("timestamp is more than 24 hours in the future", field="timestamp")
    return timestamp


def _identifiers(event: EventIn) -> tuple[list[Identifier], list[str]]:
    """Every identifier the event carries, normalised; unusable ones become warnings."""
    raw: list[tuple[str, Any]] = []
    if event.user_id:
        raw.append(("user_id", event.user_id))
    if event.anonymous_id:
        raw.append(("anonymous_id", event.anonymous_id))
    if event.type == "alias" and event.previous_id:
        raw.append(("anonymous_id", event.previous_id))
    for given in (event.traits, event.context.get("traits")):
        if isinstance(given, dict):
            raw += [(t, given[k]) for k, t in TRAIT_IDENTIFIERS.items() if given.get(k) not in (None, "")]
    device = event.context.get("device")
    if isinstance(device, dict) and device.get("id"):
        raw.append(("device_id", device["id"]))
    raw += list(event.identifiers.items())
    found: list[Identifier] = []
    warnings = []
    for identifier_type, value in raw:
        try:
            found.append(normalize_identifier(identifier_type, value))
        except InvalidInput as exc:
            warnings.append(f"{identifier_type} ignored: {exc.detail}")
    return list(dict.fromkeys(found)), warnings


def _channel(event: EventIn, actor: Principal) -> str | None:
    if actor.channel is not None:  # a channel-bound key speaks for its channel only
        return actor.channel
    named = event.channel or event.context.get("channel")
    if not isinstance(named, str) or len(named) > 40:
        return None
    return CHANNEL_ALIASES.get(named, named)


def _drop_duplicates(
    uow: UnitOfWork, prepared: list[_Prepared], results: dict[int, EventResult]
) -> list[_Prepared]:
    """Events already stored, or repeated within the request, answer ``duplicate``."""
    seen = repo.seen_message_ids(uow.conn, {p.message_id for p in prepared}) if prepared else set()
    fresh = []
    for p in prepared:
        if p.message_id in seen:
            results[p.index] = EventResult(index=p.index, message_id=p.message_id, status="duplicate")
        else:
            seen.add(p.message_id)
            fresh.append(p)
    return fresh


def _drop_suppressed(
    uow: UnitOfWork, fresh: list[_Prepared], results: dict[int, EventResult]
) -> list[_Prepared]:
    """Events carrying an identifier of a person whose data was erased on request are rejected:
    they must not build the profile again (one read of the suppression list per request)."""
    erased = suppressed(uow, {i for p in fresh for i in p.identifiers}) if fresh else set()
    if not erased:
        return fresh
    kept = []
    for p in fresh:
        hits = sorted({i.type for i in p.identifiers if (i.type, i.value) in erased})
        if hits:
            message = "belonged to a person whose data was erased on request"
            results[p.index] = _rejected(
                p.index, p.message_id, [{"field": t, "message": message} for t in hits]
            )
        else:
            kept.append(p)
    return kept


def _attribute(uow: UnitOfWork, fresh: list[_Prepared], *, source: str, moved: list[traits.Activity]) -> bool:
    """Give each event its profile. One read of every identifier's owner; events whose
    identifiers change the graph go through :func:`identity.resolve` in order, and the rest
    are attributed afterwards from what that left — so a visitor's page view sent before the
    identify in the same batch still lands on the profile. True when the graph may have changed;
    the activity of earlier anonymous events that joined a profile is added to ``moved``.

    The new identifiers are locked first, all at once and in one global order
    (:func:`repo.lock_identifiers`), and their owners read again: a concurrent request that
    claimed them meanwhile has committed, and its claim is used as it is."""
    idents = {i for p in fresh for i in p.identifiers}
    owners = _read_owners(uow, idents)
    changing = [p for p in fresh if _changes_graph(p, owners)]
    if not changing:
        _attribute_known(fresh, owners)
        return False
    new = {i for p in changing for i in p.identifiers if i not in owners}
    repo.lock_identifiers(uow.conn, new)
    if uow.dialect == "postgresql" and new:
        owners |= _read_owners(uow, new)  # what a request we waited for claimed
    if identity.adopt_accounts(uow, [i for i in new if i not in owners], source=source):
        owners |= _read_owners(uow, new)  # accounts made before the graph saw them, all at once
    rules = identity.load_rules(uow)
    _create_new_people(uow, rules, [p for p in changing if _changes_graph(p, owners)], owners, source)
    for p in fresh:
        if not _changes_graph(p, owners):
            continue
        res = identity.resolve(
            uow,
            rules,
            p.identifiers,
            source=source,
            channel=p.channel or "web",
            message_id=p.message_id,
            known=owners,
            batch=True,
        )
        p.warnings += res.warnings
        p.customer_id, p.origin_id = res.customer_id, res.origin_id
        if res.merged:
            owners = {i: (res.merged.get(cid, cid), o) for i, (cid, o) in owners.items()}
        owners.update(res.owners)
    linked = {i: owners[i] for i in new if i.type == "anonymous_id" and i in owners}
    moved += identity.move_anonymous_events(uow, linked)
    _attribute_known(fresh, owners)
    return True


def _create_new_people(
    uow: UnitOfWork,
    rules: IdentityRules,
    changing: list[_Prepared],
    owners: dict[Identifier, identity.Owner],
    source: str,
) -> None:
    """Profiles for the people this batch shows for the first time and that need none of
    :func:`identity.resolve`'s checks (:func:`identity.can_create_at_once`), in two multi-row
    statements instead of a few round trips each. Only events sharing no identifier with an
    earlier graph-changing event of the batch qualify, so the order of events still decides
    everything else; an event repeating a person created here finds that person known."""
    earlier: set[Identifier] = set()
    batched: dict[frozenset[Identifier], _Prepared] = {}
    for p in changing:
        idents = frozenset(p.identifiers)
        new = not idents & earlier and all(i not in owners for i in idents)
        if new and identity.can_create_at_once(rules, p.identifiers):
            batched[idents] = p
        earlier |= idents
    people = list(batched.values())
    created = identity.create_profiles(
        uow, [identity.NewPerson(tuple(p.identifiers), p.channel or "web") for p in people], source=source
    )
    for p, (customer_id, claimed) in zip(people, created, strict=True):
        if customer_id is None:
            continue
        owners.update({i: (customer_id, customer_id) for i in claimed})
        if len(claimed) == len(p.identifiers):
            p.customer_id = p.origin_id = customer_id
        # else: a concurrent request claimed one of them; resolve() below links or merges it


def _read_owners(uow: UnitOfWork, idents: Collection[Identifier]) -> dict[Identifier, identity.Owner]:
    return {
        i: (r.customer_id, r.origin_customer_id) for i, r in repo.identity_owners(uow.conn, idents).items()
    }


def _attribute_known(fresh: list[_Prepared], owners: Mapping[Identifier, identity.Owner]) -> None:
    for p in fresh:
        if p.customer_id is None:
            p.customer_id, p.origin_id = _owner_by_priority(p.identifiers, owners)


def _hold_profiles(uow: UnitOfWork, fresh: list[_Prepared]) -> None:
    """On PostgreSQL, keep the profiles these events go to from being merged away before they
    commit (one share-lock statement), and follow any merge that happened since they were read."""
    if uow.dialect != "postgresql":
        return
    attributed = {p.customer_id for p in fresh if p.customer_id}
    if not attributed:
        return
    roots = repo.hold_roots(uow.conn, attributed)
    for p in fresh:
        if p.customer_id:
            p.customer_id = roots.get(p.customer_id, p.customer_id)


def _changes_graph(p: _Prepared, owners: Mapping[Identifier, identity.Owner]) -> bool:
    """Whether resolving this event could create, link or merge anything."""
    profiles = {owners[i][0] for i in p.identifiers if i in owners}
    if len(profiles) > 1:
        return True
    unknown = [i for i in p.identifiers if i not in owners]
    if not unknown:
        return False
    return bool(profiles) or any(i.type in ANCHOR_TYPES for i in unknown)


def _record_identifies(uow: UnitOfWork, identifies: list[_Prepared], source: str) -> bool:
    """What identify calls say about the person: custom traits (latest event wins), and names and
    matching fields (:func:`_fill_names`). True when there was anything to write."""
    told = [p for p in identifies if p.origin_id and p.event.traits]
    if not told:
        return False
    statements = [traits.TraitStatement(p.origin_id or "", p.event.traits, p.timestamp, source) for p in told]
    for n, warnings in traits.record_custom_traits(uow, statements, skip=TRAIT_IDENTIFIERS).items():
        told[n].warnings += warnings
    _fill_names(uow, told, source)
    return True


def _fill_names(uow: UnitOfWork, identifies: list[_Prepared], source: str) -> None:
    """Names from identify traits fill a profile's empty name fields; what the customer or an
    associate typed into the account is never overwritten by a tracker. Names, birthday and
    address are kept for the matcher too (per account, first source wins)."""
    people = [
        record
        for p in identifies
        if p.origin_id and (record := linkage.record_from_traits(p.origin_id, p.event.traits))
    ]
    if people:
        linkage.index_records(
            uow, sorted({r.id: r for r in people}.values(), key=lambda r: r.id), source=source
        )
    names = {}
    for p in identifies:
        first, last = (
            _trait_text(p.event.traits, "firstName", "first_name"),
            _trait_text(p.event.traits, "lastName", "last_name"),
        )
        if p.customer_id and (first or last):
            names[p.customer_id] = {"b_id": p.customer_id, "b_first": first, "b_last": last}
    repo.fill_names(uow.conn, list(names.values()))


def _trait_text(given: Mapping[str, Any], *keys: str) -> str | None:
    value = next((given[k] for k in keys if isinstance(given.get(k), str) and given[k].strip()), None)
    return value.strip()[:100] if value else None


def _owner_by_priority(
    idents: Sequence[Identifier], owners: Mapping[Identifier, identity.Owner]
) -> tuple[str | None, str | None]:
    known = [i for i in idents if i in owners]
    if not known:
        return None, None
    return owners[min(known, key=lambda i: IDENTIFIER_TYPES.index(i.type))]


def _row(p: _Prepared, source: str, received: datetime) -> dict[str, Any]:
    e = p.event
    payload: dict[str, Any] = {
        k: v for k, v in (("properties", e.properties), ("traits", e.traits), ("context", e.context)) if v
    }
    if e.group_id:
        payload["group_id"] = e.group_id
    if e.previous_id:
        payload["previous_id"] = e.previous_id
    return {
        "id": new_id("cev"),
        "message_id": p.message_id,
        "type": e.type,
        "name": e.event if e.type == "track" else e.name,
        "customer_id": p.customer_id,
        "origin_customer_id": p.origin_id,
        "anonymous_id": e.anonymous_id,
        "user_id": e.user_id,
        "channel": p.channel,
        "source": source,
        "timestamp": p.timestamp,
        "received_at": received,
        "payload": orjson.dumps(payload).decode(),
    }
