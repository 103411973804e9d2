"""Privacy requests: export everything about a person, erase it, and keep them erased.

Data about a person lives in several contexts. Each context that holds some offers two
functions in its ``service.py`` (found by name, like subscribers, so the customers context does
not depend on the contexts above it):

- ``customer_data(uow, subject: Subject) -> list[dict]`` — its records about the person, as JSON;
- ``erase_customer_pii(uow, subject: Subject) -> int`` — removes or anonymises them (the
  financial record stays), returning the rows changed.

Erasure first exports (to learn every record id and identifying string), then erases everywhere
in the caller's one transaction, adds keyed hashes of the person's identifiers to the
suppression list, journals the request without the data and emits
``privacy.erasure_completed``. Services never commit.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Iterable
from functools import lru_cache
from types import ModuleType
from typing import Any

import orjson

from omnicommerce.customers.domain import CONSENT_CHANNELS, Identifier, normalize_email, normalize_identifier
from omnicommerce.customers.privacy import repository as repo
from omnicommerce.customers.privacy.domain import (
    IdentifierSuppressed,
    Subject,
    SubjectNotFound,
    SubjectRequired,
    identifier_pairs,
    suppression_hash,
)
from omnicommerce.customers.privacy.events import PrivacyDataExported, PrivacyErasureCompleted
from omnicommerce.customers.privacy.schemas import (
    ErasureResult,
    PrivacyExport,
    PrivacyRequestIn,
    PrivacyRequestOut,
)
from omnicommerce.customers.repository import erase_custom_traits, erase_matching_data
from omnicommerce.customers.schemas import ConsentIn, ConsentOut, ConsentsUpdate
from omnicommerce.platform import clock
from omnicommerce.platform.auth import SYSTEM, Principal, Scope
from omnicommerce.platform.config import get_settings
from omnicommerce.platform.db import UnitOfWork
from omnicommerce.platform.errors import Forbidden, InvalidInput
from omnicommerce.platform.ids import new_id
from omnicommerce.platform.outbox import erase_outbox_pii
from omnicommerce.platform.pii import record, usable_terms

# Every identifier type of the person is suppressed (not only contacts): an erased person's
# device or loyalty card must not rebuild their profile either.
CUSTOMERS = "customers"
SALE_OF_DATA = "sale_of_data"  # the consent purpose CCPA's "do not sell or share" denies


# --- entrypoints' use cases ----------------------------------------------------------------------


def export_person(uow: UnitOfWork, actor: Principal, cmd: PrivacyRequestIn) -> PrivacyExport:
    """Everything every context holds about the person, journaled (who exported whom, when)."""
    _require_privacy_admin(actor)
    subject, data = collect(uow, resolve_subject(uow, cmd))
    request_id = _journal(
        uow, "export", subject, actor, cmd.reason, {"records": {k: _size(v) for k, v in data.items()}}
    )
    uow.emit(
        PrivacyDataExported(request_id=request_id, customer_id=subject.customer_ids[0], requested_by=actor.id)
    )
    return PrivacyExport(
        request_id=request_id,
        customer_id=subject.customer_ids[0],
        customer_ids=list(subject.customer_ids),
        generated_at=clock.now(),
        data=data,
    )


def erase_person(uow: UnitOfWork, actor: Principal, cmd: PrivacyRequestIn) -> ErasureResult:
    """Remove or irreversibly anonymise the person's data in every context, suppress their
    identifiers and journal it — all in ``uow``'s one transaction."""
    _require_privacy_admin(actor)
    wide, _ = collect(uow, resolve_subject(uow, cmd))
    erased = {CUSTOMERS: _erase_customer_records(uow, wide)}
    for name, holder in holders():
        erased[name] = int(holder.erase_customer_pii(uow, wide))
    erased["outbox"] = erase_outbox_pii(uow, keys=wide.keys, terms=wide.terms)
    erased["idempotency_records"] = repo.delete_idempotency_records(uow.conn, wide.keys, wide.terms)
    request_id = new_id("prq")
    suppressed = _suppress(uow, wide.identifiers, request_id=request_id)
    summary = {
        "erased": erased,
        "accounts": list(wide.customer_ids),
        "suppressed_identifier_types": sorted({t for t, _ in wide.identifiers}),
    }
    _journal(uow, "erasure", wide, actor, cmd.reason, summary, request_id=request_id)
    uow.emit(
        PrivacyErasureCompleted(
            request_id=request_id,
            customer_ids=list(wide.customer_ids),
            erased=erased,
            suppressed_identifiers=suppressed,
            requested_by=actor.id,
        )
    )
    return ErasureResult(
        request_id=request_id,
        customer_id=wide.customer_ids[0],
        customer_ids=list(wide.customer_ids),
        erased=erased,
        suppressed_identifiers=suppressed,
        completed_at=clock.now(),
    )


def opt_out_of_sale(uow: UnitOfWork, actor: Principal, cmd: PrivacyRequestIn) -> list[ConsentOut]:
    """CCPA "do not sell or share": a denied ``sale_of_data`` decision on every channel (a
    per-channel grant would otherwise outrank one on ``any``), recorded as consent and journaled."""
    _require_privacy_admin(actor)
    # Imported here: consent depends on customers.service, which consults this module's
    # suppression list when it creates customers.
    from omnicommerce.customers import consent

    subject = resolve_subject(uow, cmd)
    denial = ConsentsUpdate(
        consents=[ConsentIn(purpose=SALE_OF_DATA, channel=c, granted=False) for c in CONSENT_CHANNELS],
        source="privacy-request",
    )
    decisions = consent.set_consents(uow, SYSTEM, subject.customer_ids[0], denial)
    _journal(uow, "do_not_sell", subject, actor, cmd.reason, {"purpose": SALE_OF_DATA, "granted": False})
    return decisions


def requests_for(uow: UnitOfWork, actor: Principal, customer_id: str) -> list[PrivacyRequestOut]:
    """The journal of privacy requests about a profile."""
    _require_privacy_admin(actor)
    return [
        PrivacyRequestOut(
            id=r.id,
            kind=r.kind,
            customer_id=r.customer_id,
            requested_by=r.requested_by,
            reason=r.reason,
            summary=orjson.loads(r.summary),
            created_at=r.created_at,
        )
        for r in repo.requests_of(uow.conn, customer_id)
    ]


# --- the suppression list ------------------------------------------------------------------------


def is_suppressed(
    uow: UnitOfWork,
    *,
    email: str | None = None,
    phone: str | None = None,
    ids: Iterable[Identifier | tuple[str, str]] = (),
) -> bool:
    """Whether any of these identifiers belonged to an erased person. One indexed read.

    For ingestion and customer creation, before they create a profile or link an identifier:
    raw ``email`` / ``phone`` are normalised here (a value that does not normalise was never
    stored, so it is not suppressed); ``ids`` are identity-graph identifiers, already normalised.
    """
    return bool(suppressed(uow, _candidates(email, phone, ids)))


def suppressed(uow: UnitOfWork, ids: Iterable[Identifier | tuple[str, str]]) -> set[tuple[str, str]]:
    """The (type, value) pairs among ``ids`` on the suppression list: one read for a whole batch."""
    pairs = {_pair(i) for i in ids}
    if not pairs:
        return set()
    secret = _hash_key()
    by_hash = {suppression_hash(secret, t, v): (t, v) for t, v in pairs}
    return {by_hash[h] for h in repo.suppressed_hashes(uow.conn, by_hash)}


def check_not_suppressed(uow: UnitOfWork, *, email: str | None = None, phone: str | None = None) -> None:
    """Raise :class:`IdentifierSuppressed` (409) for a sign-up or import of an erased contact."""
    if is_suppressed(uow, email=email, phone=phone):
        raise IdentifierSuppressed(
            "this contact belonged to a person whose data was erased on request; it cannot be used "
            "to create a profile again"
        )


def _candidates(
    email: str | None, phone: str | None, ids: Iterable[Identifier | tuple[str, str]]
) -> list[tuple[str, str]]:
    out = [_pair(i) for i in ids]
    for kind, raw in (("email", email), ("phone", phone)):
        if raw:
            try:
                out.append(_pair(normalize_identifier(kind, raw)))
            except InvalidInput:
                continue
    return out


def _pair(identifier: Identifier | tuple[str, str]) -> tuple[str, str]:
    return (identifier.type, identifier.value) if isinstance(identifier, Identifier) else identifier


def _hash_key() -> str:
    # From the process settings (not the request's): every caller — API, ingestion, CLI, jobs —
    # must hash with the same key, or a suppressed identifier would not be recognised.
    settings = get_settings()
    return settings.privacy_hash_key or settings.secret_key


def _suppress(uow: UnitOfWork, identifiers: Iterable[tuple[str, str]], *, request_id: str) -> int:
    secret = _hash_key()
    now = clock.now()
    rows = {
        suppression_hash(secret, t, v): {"identifier_type": t, "request_id": request_id, "created_at": now}
        for t, v in identifiers
    }
    repo.add_suppressions(uow.conn, [{"identifier_hash": h, **v} for h, v in rows.items()])
    return len(rows)


# --- finding and collecting ----------------------------------------------------------------------


def resolve_subject(uow: UnitOfWork, cmd: PrivacyRequestIn) -> Subject:
    """The profile named by id or email, every account merged into it, their contacts and
    identifiers."""
    start: str | None
    if cmd.customer_id is not None:
        start = cmd.customer_id
    elif cmd.email is not None:
        start = repo.owner_of_email(uow.conn, _email(cmd.email))
    else:
        raise SubjectRequired("give customer_id or email")
    root = repo.root_of(uow.conn, start) if start else None
    if root is None:
        raise SubjectNotFound("no customer matches this request")
    accounts = repo.accounts_of(uow.conn, root)
    people = repo.customer_rows(uow.conn, accounts)
    identities = repo.identity_rows(uow.conn, accounts)
    pairs = identifier_pairs(
        [
            *((i.type, i.value) for i in identities),
            *(("email", p.email) for p in people),
            *(("phone", p.phone) for p in people),
        ]
    )
    return Subject(
        customer_ids=tuple(accounts),
        emails=tuple(v for t, v in pairs if t == "email"),
        phones=tuple(v for t, v in pairs if t == "phone"),
        identifiers=pairs,
        terms=tuple(
            usable_terms(
                [v for _, v in pairs] + [n for p in people for n in (p.first_name, p.last_name) if n]
            )
        ),
    )


def _email(raw: str) -> str:
    try:
        return normalize_email(raw)
    except InvalidInput as exc:
        raise SubjectNotFound("no customer matches this request") from exc


def collect(uow: UnitOfWork, subject: Subject) -> tuple[Subject, dict[str, Any]]:
    """The export document — the customers context's records plus every holder's — and the
    subject widened by what it found. Two passes: the first finds the person's carts and orders,
    the second what other contexts hold under those ids (a fulfillment order, a webhook body)."""
    first = _sections(uow, subject)
    data = _sections(uow, subject.widened(first))
    return subject.widened(data), data


def _sections(uow: UnitOfWork, subject: Subject) -> dict[str, Any]:
    data: dict[str, Any] = {CUSTOMERS: _customer_records(uow, subject)}
    for name, holder in holders():
        data[name] = holder.customer_data(uow, subject)
    return data


def _customer_records(uow: UnitOfWork, subject: Subject) -> dict[str, Any]:
    # Imported here: segments reach ingestion (through the customers subscribers), which
    # consults this module's suppression list.
    from omnicommerce.customers.segments import service as segments

    ids = subject.customer_ids
    tables = repo.rows_of(uow.conn, ids)
    return {
        "profiles": [
            {**record(r, omit={"password_hash"}), "has_password": r.password_hash is not None}
            for r in repo.customer_rows(uow.conn, ids)
        ],
        "identities": [record(r) for r in repo.identity_rows(uow.conn, ids)],
        **{name: [record(r) for r in rows] for name, rows in tables.items()},
        "segments": [s.model_dump(mode="json") for s in segments.segments_of(uow, ids[0])],
        "events": [record(r) for r in repo.event_rows(uow.conn, ids, _anonymous_ids(subject))],
        "privacy_requests": [record(r) for r in repo.requests_of(uow.conn, ids[0])],
    }


def _erase_customer_records(uow: UnitOfWork, subject: Subject) -> int:
    ids = subject.customer_ids
    return (
        repo.anonymise_events(uow.conn, ids, _anonymous_ids(subject))
        + repo.delete_identities(uow.conn, ids)
        + repo.delete_sessions(uow.conn, ids)
        + erase_matching_data(uow.conn, ids)
        + erase_custom_traits(uow.conn, ids)
        + repo.redact_merge_evidence(uow.conn, ids)
        + repo.blank_profiles(uow.conn, ids, now=clock.now())
    )


def _anonymous_ids(subject: Subject) -> list[str]:
    return [v for t, v in subject.identifiers if t == "anonymous_id"]


Holder = tuple[str, ModuleType]


@lru_cache(maxsize=1)
def _holder_modules() -> tuple[Holder, ...]:
    """Every ``omnicommerce.<context>.service`` module offering the two privacy functions."""
    root = importlib.import_module("omnicommerce")
    found = []
    for info in pkgutil.iter_modules(root.__path__):
        name = f"omnicommerce.{info.name}.service"
        if not info.ispkg or info.name == CUSTOMERS or importlib.util.find_spec(name) is None:
            continue
        module = importlib.import_module(name)
        if _offers(module, "customer_data") and _offers(module, "erase_customer_pii"):
            found.append((info.name, module))
    return tuple(found)


def holders() -> tuple[Holder, ...]:
    return _holder_modules()


def _offers(module: ModuleType, name: str) -> bool:
    return callable(getattr(module, name, None))


# --- helpers ---------------------------------------------------------------------------------------


def _require_privacy_admin(actor: Principal) -> None:
    """Admin work: an unbound API key with privacy:write (never a customer, store or channel key)."""
    actor.require(Scope.PRIVACY_WRITE)
    if actor.is_customer or actor.channel is not None or actor.location is not None:
        raise Forbidden("privacy requests need an unbound admin API key", required_scope=Scope.PRIVACY_WRITE)


def _journal(
    uow: UnitOfWork,
    kind: str,
    subject: Subject,
    actor: Principal,
    reason: str | None,
    summary: dict[str, Any],
    *,
    request_id: str | None = None,
) -> str:
    request_id = request_id or new_id("prq")
    repo.insert_request(
        uow.conn,
        {
            "id": request_id,
            "kind": kind,
            "customer_id": subject.customer_ids[0],
            "requested_by": actor.id,
            "reason": reason,
            "summary": orjson.dumps(summary).decode(),
            "created_at": clock.now(),
        },
    )
    return request_id


def _size(section: Any) -> int:
    if isinstance(section, dict):
        return sum(_size(v) for v in section.values())
    return len(section) if isinstance(section, list) else 1
