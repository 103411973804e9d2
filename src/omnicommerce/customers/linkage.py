"""Probabilistic matching against stored profiles: blocking keys, candidates read in batches,
scoring with the matcher, and what its decisions do to the graph (a journaled merge, or a
proposal in the review queue). Used by bulk imports and, for new profiles that share no
identifier with anyone, by the ``customer.created`` subscriber. Never commits.

Records are accounts (the profile a record first created): a merged profile's accounts keep
their own attributes, so an unmerge splits them again with nothing to repair.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from omnicommerce.customers import identity
from omnicommerce.customers import repository as repo
from omnicommerce.customers.domain import IdentityRules
from omnicommerce.customers.events import IdentityReviewsQueued
from omnicommerce.customers.matching import Matcher, MatchPair, PersonRecord
from omnicommerce.customers.matching.normalize import normalize_code, normalize_date, normalize_name, soundex
from omnicommerce.customers.service import SYSTEM_CREATOR
from omnicommerce.platform import clock
from omnicommerce.platform.db import UnitOfWork
from omnicommerce.platform.ids import new_id

# A blocking key shared by more stored accounts than this (a common name in a big city) brings
# pairs that carry no signal; the other keys still find the person.
MAX_ACCOUNTS_PER_KEY = 200
CANDIDATE_BATCH = 2000  # new records scored against stored profiles per round trip
# The live matcher (new profiles one at a time) is fitted on a sample of stored profiles and
# kept per database for a while: fitting per sign-up would cost more than the sign-up.
FIT_SAMPLE = 5000
MIN_FIT_RECORDS = 100  # fewer stored profiles than this: too little to learn weights from
MODEL_TTL_SECONDS = 600.0


@dataclass(slots=True)
class Applied:
    """What scoring did: profiles merged (journaled), pairs queued for review, refusals."""

    merged: list[str] = field(default_factory=list)  # merge ids
    reviews: int = 0
    refused: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Scored:
    """A scored pair of accounts and what should happen to it."""

    pair: MatchPair
    decision: str  # merge | review


# --- attributes and keys ----------------------------------------------------------------------


def match_keys(record: PersonRecord) -> set[str]:
    """Blocking keys of a record: surname sound with postcode or birth date, postcode with birth
    date, and both names (for a sign-up that gives nothing else)."""
    sound = soundex(normalize_name(record.surname))
    given = normalize_name(record.given_name)
    postcode = normalize_code(record.postcode)
    born = normalize_date(record.date_of_birth)
    keys = set()
    if sound and postcode:
        keys.add(f"sp:{sound}:{postcode}")
    if sound and born:
        keys.add(f"sd:{sound}:{born}")
    if postcode and born:
        keys.add(f"pd:{postcode}:{born}")
    if sound and given:
        keys.add(f"nn:{given[:40]}:{sound}")
    return {k[:160] for k in keys}


def index_records(uow: UnitOfWork, records: Sequence[PersonRecord], *, source: str) -> None:
    """Store the records' attributes (per account, first source wins) and their blocking keys."""
    now = clock.now()
    attributes = [
        {
            "customer_id": r.id,
            **{name: getattr(r, name) for name in repo.ATTRIBUTE_FIELDS},
            "source": source,
            "updated_at": now,
        }
        for r in records
    ]
    repo.upsert_attributes(uow.conn, attributes)
    repo.insert_match_keys(
        uow.conn, [{"key": k, "customer_id": r.id} for r in records for k in sorted(match_keys(r))]
    )


def record_from_traits(account_id: str, traits: Mapping[str, Any]) -> PersonRecord | None:
    """Matcher fields from Segment identify traits (``firstName``, ``lastName``, ``birthday``,
    ``address.{street, city, postalCode, state}``); None when they name no one."""
    given_address = traits.get("address")
    address: Mapping[str, Any] = given_address if isinstance(given_address, dict) else {}
    street = _text(address, "street", 200)
    number, _, rest = (street or "").partition(" ")
    has_number = bool(number) and number[0].isdigit() and bool(rest)
    born = normalize_date(_text(traits, "birthday", 40) or _text(traits, "dateOfBirth", 40))
    record = PersonRecord(
        id=account_id,
        given_name=_text(traits, "firstName", 100) or _text(traits, "first_name", 100),
        surname=_text(traits, "lastName", 100) or _text(traits, "last_name", 100),
        date_of_birth=f"{born[:4]}-{born[4:6]}-{born[6:]}" if born else None,
        street_number=number[:20] if has_number else None,
        address_1=rest[:200] if has_number else street,
        suburb=_text(address, "city", 100),
        postcode=_text(address, "postalCode", 20) or _text(address, "postal_code", 20),
        state=_text(address, "state", 50),
    )
    return record if record.given_name or record.surname else None


def _text(source: Mapping[str, Any], key: str, limit: int) -> str | None:
    value = source.get(key)
    return value.strip()[:limit] or None if isinstance(value, str) else None


def record_of(row: repo.AnyRow) -> PersonRecord:
    """The matcher's view of a stored account (names from its attributes, else its account)."""
    return PersonRecord(
        id=row.id,
        given_name=row.given_name or row.first_name,
        surname=row.surname or row.last_name,
        date_of_birth=row.date_of_birth,
        email=row.email,
        phone=row.phone,
        street_number=row.street_number,
        address_1=row.address_1,
        address_2=row.address_2,
        suburb=row.suburb,
        postcode=row.postcode,
        state=row.state,
    )


# --- scoring against stored profiles -----------------------------------------------------------


def candidates(
    uow: UnitOfWork, records: Sequence[PersonRecord], *, exclude: Collection[str]
) -> tuple[list[PersonRecord], dict[str, str]]:
    """Stored accounts sharing a blocking key with ``records`` (none of ``exclude``, by account
    or root), and each candidate's current root."""
    keys = set().union(*(match_keys(r) for r in records)) if records else set()
    by_key = repo.accounts_by_keys(uow.conn, keys, per_key=MAX_ACCOUNTS_PER_KEY)
    ids = {a for accounts in by_key.values() if len(accounts) <= MAX_ACCOUNTS_PER_KEY for a in accounts}
    rows = [r for r in repo.person_rows(uow.conn, ids - set(exclude)) if r.root_id not in exclude]
    return [record_of(r) for r in rows], {r.id: r.root_id for r in rows}


def score_against_stored(
    uow: UnitOfWork, matcher: Matcher, records: Sequence[PersonRecord], *, exclude: Collection[str]
) -> list[Scored]:
    """Each new record linked to at most one stored account (one-to-one, best first), in batches
    so a large tenant's profiles are never all in memory."""
    scored: list[Scored] = []
    for start in range(0, len(records), CANDIDATE_BATCH):
        batch = records[start : start + CANDIDATE_BATCH]
        stored, _roots = candidates(uow, batch, exclude=exclude)
        if not stored:
            continue
        for pair in matcher.match(batch, stored):
            decision = matcher.decide(pair)
            if decision != "distinct":
                scored.append(Scored(pair, decision))
    return scored


def apply(
    uow: UnitOfWork,
    rules: IdentityRules,
    matcher: Matcher,
    scored: Iterable[Scored],
    *,
    source: str,
    origin: str,
) -> Applied:
    """Merge what the matcher is sure of (journaled with its evidence; only for a trusted
    source, else proposed), and queue the rest for review."""
    applied = Applied()
    proposals = []
    merges = []
    trusted = rules.may_merge(source)
    for item in scored:
        evidence = pair_evidence(matcher, item.pair, item.decision, origin=origin)
        if item.decision == "merge" and trusted:
            merges.append(identity.MergeRequest(item.pair.left_id, item.pair.right_id, evidence))
        else:
            proposals.append(review_row(item.pair, evidence, source=source, origin=origin))
    for outcome in identity.merge_profiles(uow, rules, merges, source=source):
        if outcome.merge_id is not None:
            applied.merged.append(outcome.merge_id)
        elif outcome.refusal is not None:
            applied.refused.append(outcome.refusal)
    applied.reviews = len(repo.insert_reviews(uow.conn, proposals))
    if applied.reviews:
        uow.emit(IdentityReviewsQueued(origin=origin, count=applied.reviews))
    return applied


def pair_evidence(matcher: Matcher, pair: MatchPair, decision: str, *, origin: str) -> dict[str, Any]:
    """What the journal and the review queue keep: the score and, per comparison, its level and
    the bits it added. Record ids and levels only, never the compared values."""
    return {
        "method": "probabilistic",
        "origin": origin,
        "records": [pair.left_id, pair.right_id],
        "probability": round(pair.probability, 6),
        "weight": round(pair.weight, 4),
        "decision": decision,
        "levels": dict(pair.evidence),
        "bits": {k: round(v, 4) for k, v in matcher.explain(pair).items()},
    }


def review_row(pair: MatchPair, evidence: Mapping[str, Any], *, source: str, origin: str) -> dict[str, Any]:
    return {
        "id": new_id("rev"),
        "left_id": pair.left_id,
        "right_id": pair.right_id,
        "pair_key": pair_key(pair.left_id, pair.right_id),
        "probability": pair.probability,
        "weight": pair.weight,
        "evidence": orjson.dumps(evidence).decode(),
        "source": source,
        "origin": origin,
        "status": "pending",
        "created_at": clock.now(),
    }


def pair_key(a: str, b: str) -> str:
    low, high = sorted((a, b))
    return f"{low}|{high}"


# --- a new profile, one at a time (the customer.created subscriber) ----------------------------


def match_new_profile(uow: UnitOfWork, customer_id: str) -> Applied | None:
    """Score a profile just created with no identifier shared with anyone against the stored
    profiles sharing a blocking key with it. Skipped (None) when it has no name, was already
    scored (an import scores its own rows), or too few profiles exist to learn from.

    Only a trusted source merges: a shopper's own sign-up never does (whoever types a name
    and address must not join someone else's profile), it is proposed for review at most."""
    rows = repo.person_rows(uow.conn, [customer_id])
    if not rows or rows[0].matched_at is not None or rows[0].root_id != customer_id:
        return None
    row = rows[0]
    record = record_of(row)
    if not (record.given_name and record.surname):
        return None
    source = _creating_source(uow, row)
    index_records(uow, [record], source=source)
    repo.mark_matched(uow.conn, [customer_id], now=clock.now())
    matcher = fitted_matcher(uow)
    if matcher is None:
        return None
    scored = score_against_stored(uow, matcher, [record], exclude={customer_id})
    return apply(uow, identity.load_rules(uow), matcher, scored, source=source, origin="ingestion")


SELF_SIGN_UP = "self-sign-up"  # never trusted to merge


def _creating_source(uow: UnitOfWork, row: repo.AnyRow) -> str:
    if row.created_by == row.id:
        return SELF_SIGN_UP
    if row.created_by == SYSTEM_CREATOR:  # made by the identity graph: whoever sent the event
        linked = repo.identities_of(uow.conn, row.id)
        return str(linked[0].source) if linked else row.created_by
    return str(row.created_by)


_models: dict[str, tuple[float, Matcher]] = {}
_models_lock = threading.Lock()


def fitted_matcher(uow: UnitOfWork) -> Matcher | None:
    """A matcher fitted on a sample of stored profiles, kept for ``MODEL_TTL_SECONDS`` per
    database; None while fewer than ``MIN_FIT_RECORDS`` profiles have attributes."""
    url = uow.db.url
    with _models_lock:
        cached = _models.get(url)
    if cached is not None and time.monotonic() - cached[0] < MODEL_TTL_SECONDS:
        return cached[1]
    sample = [record_of(r) for r in repo.sample_person_rows(uow.conn, FIT_SAMPLE)]
    if len(sample) < MIN_FIT_RECORDS:
        return None
    matcher = Matcher().fit(sample)
    with _models_lock:
        _models[url] = (time.monotonic(), matcher)
    return matcher


def forget_models() -> None:
    """Drop the cached live matchers (after a large import, or between tests)."""
    with _models_lock:
        _models.clear()
