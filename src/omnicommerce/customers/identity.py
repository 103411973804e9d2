"""Identity resolution use cases: which profile an event belongs to, linking new identifiers,
deterministic merges in real time, and unmerge. None of them commits.

Concurrency: the unique (type, value) of ``customer_identities`` and the unique email/phone of
``customers`` decide every race. A loser's ``INSERT … ON CONFLICT DO NOTHING`` claims nothing
(on PostgreSQL it first waits for the winner's transaction), and :func:`resolve` then reads the
winner's rows and starts over; nothing is read-then-written.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from omnicommerce.customers import repository as repo
from omnicommerce.customers import traits
from omnicommerce.customers.domain import (
    ANCHOR_TYPES,
    CustomerNotFound,
    Identifier,
    IdentityRules,
    MergeNotFound,
    survivor_order,
)
from omnicommerce.customers.events import CustomerCreated, CustomerMerged, CustomerUnmerged, IdentityLinked
from omnicommerce.customers.schemas import (
    IdentityOut,
    IdentityRulesDoc,
    IdentityRulesOut,
    MergeOut,
    UnmergeResult,
)
from omnicommerce.customers.service import SYSTEM_CREATOR, new_customer_row
from omnicommerce.platform import clock
from omnicommerce.platform.auth import Principal, Scope
from omnicommerce.platform.db import UnitOfWork
from omnicommerce.platform.errors import Conflict
from omnicommerce.platform.ids import new_id

MAX_ATTEMPTS = 4  # each retry follows a race lost to a concurrent request; four is plenty
Owner = tuple[str, str]  # (customer_id, origin_customer_id)


class IdentityContention(Conflict):
    code = "identity-contention"
    title = "Identity graph busy"


@dataclass(slots=True)
class Resolution:
    customer_id: str | None = None
    origin_id: str | None = None
    owners: dict[Identifier, Owner] = field(default_factory=dict)  # after linking and merging
    merged: dict[str, str] = field(default_factory=dict)  # merged profile → survivor
    warnings: list[str] = field(default_factory=list)
    # Earlier events of visitors linked now, for the computed traits (recorded by ``resolve``).
    moved: list[traits.Activity] = field(default_factory=list)
    # The caller moves visitors' earlier events and records their activity itself (a batch).
    deferred: bool = False


# --- rules ---------------------------------------------------------------------------------------


def load_rules(uow: UnitOfWork) -> IdentityRules:
    row = repo.rules_document(uow.conn)
    return IdentityRules() if row is None else IdentityRules.from_document(orjson.loads(row.document))


def get_rules(uow: UnitOfWork, actor: Principal) -> IdentityRulesOut:
    actor.require(Scope.CUSTOMERS_READ)
    row = repo.rules_document(uow.conn)
    rules = IdentityRules() if row is None else IdentityRules.from_document(orjson.loads(row.document))
    return IdentityRulesOut(**rules.to_document(), version=0 if row is None else row.version)


def set_rules(uow: UnitOfWork, actor: Principal, doc: IdentityRulesDoc) -> IdentityRulesOut:
    """Replace the rule set (fields left out take their defaults). Admin only."""
    actor.require(Scope.ADMIN)
    rules = IdentityRules.from_document(doc.model_dump(exclude_none=True))
    document = rules.to_document()
    version = repo.save_rules_document(
        uow.conn, orjson.dumps(document).decode(), by=actor.id, now=clock.now()
    )
    return IdentityRulesOut(**document, version=version)


# --- resolving -----------------------------------------------------------------------------------


def resolve(
    uow: UnitOfWork,
    rules: IdentityRules,
    identifiers: Sequence[Identifier],
    *,
    source: str,
    channel: str,
    message_id: str,
    known: Mapping[Identifier, Owner] | None = None,
    batch: bool = False,
) -> Resolution:
    """The profile for an event's identifiers: found, created from an anchor, or — when they
    point at several profiles and the rules allow — the result of merging them. Identifiers not
    yet known are linked to it within the per-type limits; blocked values are ignored.

    ``known``: the owners of these identifiers as this transaction last read them (the ingestion
    batch's one read), saving the first lookup; any lost race reads them again.
    ``batch``: the caller (ingestion) has adopted the accounts of these identifiers already, and
    moves the visitors' earlier events and records their activity itself, for all its events at
    once (:func:`move_anonymous_events`)."""
    result = Resolution(deferred=batch)
    idents = []
    for ident in dict.fromkeys(identifiers):
        if rules.is_blocked(ident):
            result.warnings.append(f"{ident.type} is on the blocked list and was ignored")
        else:
            idents.append(ident)
    adopted = batch
    for attempt in range(MAX_ATTEMPTS):
        owners = _owners(uow, idents, known if attempt == 0 else None)
        unowned = [i for i in idents if i not in owners]
        if unowned and not adopted:
            adopted = True
            if adopt_accounts(uow, unowned, source=source):
                continue
        done = _settle(
            uow, rules, owners, unowned, result, source=source, channel=channel, message_id=message_id
        )
        if done is not None:
            traits.record_activity(uow, done.moved)
            return done
    raise IdentityContention("the identity graph changed under this event too often; retry it")


def _owners(
    uow: UnitOfWork, idents: Sequence[Identifier], known: Mapping[Identifier, Owner] | None
) -> dict[Identifier, Owner]:
    if known is not None:
        return {i: known[i] for i in idents if i in known}
    return {
        i: (r.customer_id, r.origin_customer_id) for i, r in repo.identity_owners(uow.conn, idents).items()
    }


def _settle(
    uow: UnitOfWork,
    rules: IdentityRules,
    owners: dict[Identifier, Owner],
    unowned: Sequence[Identifier],
    result: Resolution,
    *,
    source: str,
    channel: str,
    message_id: str,
) -> Resolution | None:
    """One attempt: find, create, merge and link. None when a concurrent request got in the
    way (a claim came back empty, a profile was merged away): the caller reads again."""
    matches: dict[str, list[Identifier]] = defaultdict(list)
    for ident, (cid, _origin) in owners.items():
        matches[cid].append(ident)
    if len(matches) == 1 and not unowned:
        return _resolved(result, rules, owners, next(iter(matches)))
    if not matches:
        if not any(i.type in ANCHOR_TYPES for i in unowned):
            return result  # only anonymous or device ids: a visitor, not yet a profile
        created = _create_profile(uow, rules, unowned, result, source=source, channel=channel)
        if created is None or len(created[1]) != len(unowned):
            return None  # an account or a concurrent event took an identifier first (or a limit did)
        customer_id, claimed = created
        return _resolved(result, rules, {i: (customer_id, customer_id) for i in claimed}, customer_id)
    order = survivor_order(rules, matches)
    all_counts = repo.identity_counts(uow.conn, order)
    if _outranked(rules, matches[order[0]], all_counts[order[0]], unowned):
        # A new identifier that outranks every match cannot join the matched profile (its limit
        # is full): it names another person — the second adult on the family tablet. They get
        # their own profile; the shared lower-priority identifiers stay where they are.
        result.warnings.append("a shared identifier was not used: it belongs to another profile")
        created = _create_profile(uow, rules, unowned, result, source=source, channel=channel)
        if created is None:
            return None
        customer_id, claimed = created
        return _resolved(
            result, rules, owners | {i: (customer_id, customer_id) for i in claimed}, customer_id
        )
    survivor, counts = _merge_matches(
        uow, rules, order, all_counts, matches, result, source=source, message_id=message_id
    )
    if survivor is None:
        return None
    linked = _link(uow, rules, survivor, unowned, counts, result, source=source)
    if linked is None:
        return None
    owners = {i: (result.merged.get(cid, cid), o) for i, (cid, o) in owners.items()}
    return _resolved(result, rules, owners | {i: (survivor, survivor) for i in linked}, survivor)


def _resolved(
    result: Resolution, rules: IdentityRules, owners: dict[Identifier, Owner], customer_id: str
) -> Resolution:
    """The event's origin is the profile its highest-priority identifier first belonged to, so an
    unmerge can send it back to the right side."""
    result.owners = owners
    result.customer_id = customer_id
    mine = [i for i, (cid, _o) in owners.items() if cid == customer_id]
    top = min(mine, key=lambda i: rules.rank(i.type)) if mine else None
    result.origin_id = owners[top][1] if top is not None else customer_id
    return result


def adopt_accounts(uow: UnitOfWork, unowned: Sequence[Identifier], *, source: str) -> bool:
    """Accounts made before the graph saw them (sign-up, checkout, POS; a ``cus_…`` user id) join it
    with their email and phone. True when something was linked."""
    emails = [i.value for i in unowned if i.type == "email"]
    phones = [i.value for i in unowned if i.type == "phone"]
    customer_ids = [i.value for i in unowned if i.type == "user_id" and i.value.startswith("cus_")]
    rows: list[dict[str, Any]] = []
    now = clock.now()
    for acc in repo.customers_by_contact(uow.conn, emails, phones, customer_ids):
        root = acc.merged_into or acc.id
        contacts = [("email", acc.email), ("phone", acc.phone)]
        if acc.id in customer_ids:
            contacts.append(("user_id", acc.id))
        rows += [
            identity_row(Identifier(t, v), root, acc.id, source, now) for t, v in contacts if v is not None
        ]
    return bool(repo.insert_identities(uow.conn, rows))


def _create_profile(
    uow: UnitOfWork,
    rules: IdentityRules,
    unowned: Sequence[Identifier],
    result: Resolution,
    *,
    source: str,
    channel: str,
) -> tuple[str, set[Identifier]] | None:
    """A new profile claiming the identifiers (within limits). None when its email or phone names
    an account, or a concurrent event claimed every anchor first (the row is then removed)."""
    wanted = within_limits(rules, {}, unowned)
    email = next((i.value for i in wanted if i.type == "email"), None)
    phone = next((i.value for i in wanted if i.type == "phone"), None)
    values = new_customer_row(email=email, phone=phone, channel=channel, created_by=SYSTEM_CREATOR)
    customer_id = values["id"]
    if not repo.insert_profile(uow.conn, values):
        return None
    now = clock.now()
    claimed = repo.insert_identities(
        uow.conn, [identity_row(i, customer_id, customer_id, source, now) for i in wanted]
    )
    if not any(i.type in ANCHOR_TYPES for i in claimed):
        repo.delete_profile(uow.conn, customer_id)
        return None
    uow.emit(CustomerCreated(customer_id=customer_id, channel=channel))
    result.moved += after_link(uow, customer_id, claimed, source=source, move=not result.deferred)
    return customer_id, claimed


@dataclass(frozen=True, slots=True)
class NewPerson:
    """Identifiers of someone seen for the first time, all new, none naming an account."""

    identifiers: tuple[Identifier, ...]
    channel: str


def can_create_at_once(rules: IdentityRules, identifiers: Sequence[Identifier]) -> bool:
    """Whether a profile for these (all unknown; their accounts, if any, adopted already)
    identifiers needs none of :func:`resolve`'s checks: one of them names a person, none is
    blocked or over its limit, and none is a ``cus_…`` user id (an account's own id)."""
    return (
        any(i.type in ANCHOR_TYPES for i in identifiers)
        and not any(rules.is_blocked(i) for i in identifiers)
        and not any(i.type == "user_id" and i.value.startswith("cus_") for i in identifiers)
        and len(within_limits(rules, {}, identifiers)) == len(identifiers)
    )


def create_profiles(
    uow: UnitOfWork, people: Sequence[NewPerson], *, source: str
) -> list[tuple[str | None, set[Identifier]]]:
    """Profiles for many new people at once (the first sight of signed-in users, a batch at a
    time): one multi-row insert of profiles, one of identities. Per person: the profile and the
    identifiers it claimed. The caller moves visitors' earlier events
    (:func:`move_anonymous_events`). A person whose email or phone an account took meanwhile, or
    whose identifiers were not all claimed (a concurrent request got one first), is the caller's
    to resolve again; a profile that claimed no anchor is removed (profile None)."""
    if not people:
        return []
    rows = [
        new_customer_row(
            email=next((i.value for i in p.identifiers if i.type == "email"), None),
            phone=next((i.value for i in p.identifiers if i.type == "phone"), None),
            channel=p.channel,
            created_by=SYSTEM_CREATOR,
        )
        for p in people
    ]
    inserted = repo.insert_profiles(uow.conn, rows)
    now = clock.now()
    claimed = repo.insert_identities(
        uow.conn,
        [
            identity_row(i, row["id"], row["id"], source, now)
            for p, row in zip(people, rows, strict=True)
            if row["id"] in inserted
            for i in p.identifiers
        ],
    )
    outcomes: list[tuple[str | None, set[Identifier]]] = []
    for person, row in zip(people, rows, strict=True):
        mine = {i for i in person.identifiers if i in claimed}
        if row["id"] not in inserted:
            outcomes.append((None, set()))
        elif not any(i.type in ANCHOR_TYPES for i in mine):
            repo.delete_profile(uow.conn, row["id"])
            outcomes.append((None, set()))
        else:
            uow.emit(CustomerCreated(customer_id=row["id"], channel=person.channel))
            after_link(uow, row["id"], mine, source=source, move=False)
            outcomes.append((row["id"], mine))
    return outcomes


def _outranked(
    rules: IdentityRules, matched: Sequence[Identifier], counts: dict[str, int], unowned: Sequence[Identifier]
) -> bool:
    best_match = min(rules.rank(i.type) for i in matched)
    return any(
        i.type in ANCHOR_TYPES and rules.rank(i.type) < best_match and not rules.fits(counts, {i.type: 1})
        for i in unowned
    )


def _merge_matches(
    uow: UnitOfWork,
    rules: IdentityRules,
    order: Sequence[str],
    counts: dict[str, dict[str, int]],
    matches: dict[str, list[Identifier]],
    result: Resolution,
    *,
    source: str,
    message_id: str,
) -> tuple[str | None, dict[str, int]]:
    """Fold the other matched profiles (``order``: survivor first) into the survivor where rules
    allow; returns the survivor and its identifier counts (None if a concurrent merge got in the way)."""
    survivor = order[0]
    for other in order[1:]:
        reason = _merge_refusal(uow, rules, counts[survivor], counts[other], survivor, other, source)
        if reason is not None:
            result.warnings.append(f"not merged with another profile: {reason}")
            continue
        if repo.lock_roots(uow.conn, [survivor, other]) != {survivor, other}:
            return None, {}
        evidence = {
            "message_id": message_id,
            "survivor_matched_by": sorted({i.type for i in matches[survivor]}),
            "merged_matched_by": sorted({i.type for i in matches[other]}),
        }
        _journal_merge(
            uow,
            survivor,
            other,
            source=source,
            evidence=evidence,
            identifier_types=sorted({i.type for i in matches[survivor] + matches[other]}),
        )
        result.merged[other] = survivor
        for t, n in counts[other].items():
            counts[survivor][t] = counts[survivor].get(t, 0) + n
    return survivor, counts[survivor]


def _journal_merge(
    uow: UnitOfWork,
    survivor: str,
    merged: str,
    *,
    source: str,
    evidence: Mapping[str, Any],
    identifier_types: list[str],
) -> str:
    """Fold ``merged`` into ``survivor`` (both locked roots), journal it with its evidence and
    emit ``customer.merged``; returns the merge id."""
    return _journal_merges(uow, [(survivor, merged, evidence)], source=source, types=[identifier_types])[0]


@dataclass(frozen=True, slots=True)
class MergeOutcome:
    merge_id: str | None  # None: not merged (see ``refusal``), or already one profile
    survivor_id: str | None
    refusal: str | None = None


@dataclass(frozen=True, slots=True)
class MergeRequest:
    """Two accounts the matcher (or a reviewer) says are one person, and why."""

    a: str
    b: str
    evidence: Mapping[str, Any]


def merge_profiles(
    uow: UnitOfWork,
    rules: IdentityRules,
    requests: Sequence[MergeRequest],
    *,
    source: str,
    check_trust: bool = True,
) -> list[MergeOutcome]:
    """Merge the profiles of pairs of accounts on evidence other than a shared identifier (the
    matcher's, or a reviewer's), in order: trust (unless a reviewer decided:
    ``check_trust=False``) and earlier splits apply. Per-type limits do not: they keep a shared
    device or phone from chaining different people together, while this evidence compared the
    people themselves (a home and a work email are still one person). The older profile
    survives; each merge is journaled with its evidence.

    Set-based, for imports: one read of the roots, of earlier splits and of identifier types,
    one lock of every root, the folds as three executemany statements and one multi-row journal
    insert, whatever the number of pairs."""
    if not requests:
        return []
    if check_trust and not rules.may_merge(source):
        return [MergeOutcome(None, None, "the source is not trusted to merge profiles")] * len(requests)
    roots = repo.roots_of(uow.conn, {x for r in requests for x in (r.a, r.b)})
    involved = set(roots.values())
    held = repo.lock_roots(uow.conn, sorted(involved))
    split = repo.undone_pairs(uow.conn, involved)
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while x in parent:
            x = parent[x]
        return x

    outcomes: list[MergeOutcome] = []
    planned: list[tuple[str, str, Mapping[str, Any]]] = []
    for request in requests:
        if request.a not in roots or request.b not in roots:
            outcomes.append(MergeOutcome(None, None, "one of the profiles no longer exists"))
            continue
        survivor, merged = sorted((find(roots[request.a]), find(roots[request.b])))
        if survivor == merged:
            outcomes.append(MergeOutcome(None, survivor))
        elif not {survivor, merged} <= held:
            outcomes.append(MergeOutcome(None, None, "a concurrent merge changed these profiles; try again"))
        elif frozenset((survivor, merged)) in split:
            outcomes.append(MergeOutcome(None, None, "an earlier merge of these profiles was undone"))
        else:
            parent[merged] = survivor
            planned.append((survivor, merged, request.evidence))
            outcomes.append(MergeOutcome("", survivor))  # the id is given below
    merge_ids = _journal_merges(uow, planned, source=source)
    ids = iter(merge_ids)
    return [MergeOutcome(next(ids), o.survivor_id) if o.merge_id == "" else o for o in outcomes]


def _journal_merges(
    uow: UnitOfWork,
    planned: Sequence[tuple[str, str, Mapping[str, Any]]],
    *,
    source: str,
    types: Sequence[list[str]] | None = None,
) -> list[str]:
    """Fold each merged root into its survivor (in order: a survivor may itself be folded
    later), journal every merge and emit ``customer.merged`` (with ``types``, the identifier
    types behind each merge, or else those the two profiles hold); returns the merge ids."""
    if not planned:
        return []
    if types is None:
        counts = repo.identity_counts(uow.conn, {x for s, m, _ in planned for x in (s, m)})
        types = [sorted(set(counts[s]) | set(counts[m])) for s, m, _ in planned]
    repo.fold_profiles(uow.conn, [(survivor, merged) for survivor, merged, _ in planned])
    now = clock.now()
    rows: list[dict[str, Any]] = [
        {
            "id": new_id("mrg"),
            "survivor_id": survivor,
            "merged_id": merged,
            "source": source,
            "evidence": orjson.dumps(evidence).decode(),
            "created_at": now,
        }
        for survivor, merged, evidence in planned
    ]
    repo.insert_merges(uow.conn, rows)
    for row, row_types in zip(rows, types, strict=True):
        uow.emit(
            CustomerMerged(
                merge_id=row["id"],
                survivor_id=row["survivor_id"],
                merged_id=row["merged_id"],
                source=source,
                identifier_types=row_types,
            )
        )
    return [str(row["id"]) for row in rows]


def _merge_refusal(
    uow: UnitOfWork,
    rules: IdentityRules,
    survivor_counts: dict[str, int],
    other_counts: dict[str, int],
    survivor: str,
    other: str,
    source: str,
    *,
    check_trust: bool = True,
) -> str | None:
    if check_trust and not rules.may_merge(source):
        return "the source is not trusted to merge profiles"
    if not rules.fits(survivor_counts, other_counts):
        return "the merged profile would exceed an identifier limit"
    if repo.were_split(uow.conn, survivor, other):
        return "an earlier merge of these profiles was undone"
    return None


def _link(
    uow: UnitOfWork,
    rules: IdentityRules,
    customer_id: str,
    unowned: Sequence[Identifier],
    counts: dict[str, int],
    result: Resolution,
    *,
    source: str,
) -> set[Identifier] | None:
    """Link new identifiers to the profile, up to each type's limit. None: a concurrent event
    claimed one of them first (the caller reads again)."""
    wanted = within_limits(rules, counts, unowned)
    for ident in unowned:
        if ident not in wanted:
            result.warnings.append(f"{ident.type} not linked: the profile has its limit of {ident.type}")
    if not wanted:
        return set()
    if (
        uow.dialect == "postgresql"
        and repo.hold_roots(uow.conn, [customer_id]).get(customer_id) != customer_id
    ):
        return None  # merged away a moment ago: resolve again against the survivor
    now = clock.now()
    claimed = repo.insert_identities(
        uow.conn, [identity_row(i, customer_id, customer_id, source, now) for i in wanted]
    )
    result.moved += after_link(uow, customer_id, claimed, source=source, move=not result.deferred)
    return claimed if len(claimed) == len(wanted) else None


def within_limits(
    rules: IdentityRules, counts: dict[str, int], idents: Iterable[Identifier]
) -> list[Identifier]:
    room = {t: rules.limits.get(t, 1) - counts.get(t, 0) for t in rules.priority}
    taken = []
    for ident in sorted(idents, key=lambda i: rules.rank(i.type)):
        if room[ident.type] > 0:
            room[ident.type] -= 1
            taken.append(ident)
    return taken


def after_link(
    uow: UnitOfWork, customer_id: str, claimed: Collection[Identifier], *, source: str, move: bool = True
) -> list[traits.Activity]:
    """Announce the link; a visitor's earlier anonymous events join the profile (unless ``move``
    is False: the caller moves them, see :func:`move_anonymous_events`). Returns their activity
    for the computed traits (the caller records it)."""
    if not claimed:
        return []
    anonymous = [i.value for i in claimed if i.type == "anonymous_id"] if move else []
    moved = (
        repo.attribute_anonymous_events(uow.conn, anonymous, customer_id=customer_id, origin_id=customer_id)
        if anonymous
        else []
    )
    uow.emit(
        IdentityLinked(
            customer_id=customer_id, identifier_types=sorted({i.type for i in claimed}), source=source
        )
    )
    return [(customer_id, r.timestamp, r.channel) for r in moved]


def move_anonymous_events(uow: UnitOfWork, owners: Mapping[Identifier, Owner]) -> list[traits.Activity]:
    """The earlier events of these (just linked) anonymous ids join their profiles: each to the
    profile that owns the id now, with the profile it was linked to as origin. One read and one
    batched update for a whole request; returns the moved events' activity."""
    by_value = {i.value: owner for i, owner in owners.items() if i.type == "anonymous_id"}
    rows = repo.unattributed_events(uow.conn, list(by_value))
    repo.attribute_events(
        uow.conn,
        [
            {"b_id": r.id, "b_customer": by_value[r.anonymous_id][0], "b_origin": by_value[r.anonymous_id][1]}
            for r in rows
        ],
    )
    return [(by_value[r.anonymous_id][1], r.timestamp, r.channel) for r in rows]


def identity_row(
    ident: Identifier, customer_id: str, origin_id: str, source: str, now: Any
) -> dict[str, Any]:
    return {
        "id": new_id("idn"),
        "type": ident.type,
        "value": ident.value,
        "customer_id": customer_id,
        "origin_customer_id": origin_id,
        "source": source,
        "created_at": now,
    }


def roots_of(uow: UnitOfWork, customer_ids: Collection[str]) -> dict[str, str]:
    return repo.roots_of(uow.conn, customer_ids) if customer_ids else {}


# --- unmerge and reading the graph ----------------------------------------------------------------


def unmerge(uow: UnitOfWork, actor: Principal, customer_id: str) -> UnmergeResult:
    """Split ``customer_id`` back out of the profile it was merged into: its identities and
    events (and those of profiles merged into it before) return to it, by their origin. Orders
    keep the account they were placed by, so they follow that account's profile. The pair is
    remembered as split, so the next event carrying both identifiers does not merge them again."""
    actor.require(Scope.CUSTOMERS_WRITE)
    merge = repo.active_merge_of(uow.conn, customer_id)
    if merge is None:
        raise MergeNotFound(f"customer {customer_id!r} is not merged into another profile")
    root = repo.roots_of(uow.conn, [customer_id])[customer_id]
    repo.lock_roots(uow.conn, [root, customer_id])
    if not repo.mark_merge_undone(uow.conn, merge.id, now=clock.now(), by=actor.id):
        raise MergeNotFound(f"the merge of {customer_id!r} was undone meanwhile")
    members = _merged_into(uow, customer_id)
    identities_moved, events_moved = repo.split_profile(
        uow.conn, root_id=root, customer_id=customer_id, members=members
    )
    uow.emit(
        CustomerUnmerged(
            merge_id=merge.id, customer_id=customer_id, survivor_id=merge.survivor_id, by=actor.id
        )
    )
    return UnmergeResult(
        customer_id=customer_id,
        survivor_id=merge.survivor_id,
        merge_id=merge.id,
        identities_moved=identities_moved,
        events_moved=events_moved,
        profiles_moved=len(members) - 1,
    )


def _merged_into(uow: UnitOfWork, customer_id: str) -> set[str]:
    """The profile and every profile merged into it (recursively) by merges still in force."""
    members = {customer_id}
    frontier = [customer_id]
    while frontier:
        frontier = [
            r.merged_id for r in repo.active_merges_into(uow.conn, frontier) if r.merged_id not in members
        ]
        members.update(frontier)
    return members


def identities(uow: UnitOfWork, customer_id: str) -> list[IdentityOut]:
    return [
        IdentityOut(
            type=r.type,
            value=r.value,
            source=r.source,
            origin_customer_id=r.origin_customer_id,
            created_at=r.created_at,
        )
        for r in repo.identities_of(uow.conn, customer_id)
    ]


def merges(uow: UnitOfWork, actor: Principal, customer_id: str) -> list[MergeOut]:
    """The merge journal of one profile, both directions, oldest first."""
    actor.require(Scope.CUSTOMERS_READ)
    rows = repo.merges_touching(uow.conn, customer_id)
    if not rows and not repo.roots_of(uow.conn, [customer_id]):
        raise CustomerNotFound(f"no customer {customer_id!r}")
    return [
        MergeOut(
            id=r.id,
            survivor_id=r.survivor_id,
            merged_id=r.merged_id,
            source=r.source,
            evidence=orjson.loads(r.evidence),
            created_at=r.created_at,
            undone_at=r.undone_at,
        )
        for r in rows
    ]
