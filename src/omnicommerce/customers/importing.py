"""Bulk onboarding: a CRM export, a loyalty file or another platform's customers (CSV or JSON
Lines) into the identity graph. Never commits.

Each row is mapped (file column → matcher field, identifier type or trait), validated on its own
(a bad row is rejected with its reasons, never the file), then:

1. **Deterministic**, in file order and in chunks: a row whose identifiers are all new creates a
   profile (multi-row INSERTs); a row whose identifiers all belong to one profile updates it;
   anything else (new identifiers next to known ones, two profiles meeting) goes through the
   identity graph's :func:`identity.resolve`, with its limits, blocked values and trust.
2. **Probabilistic**, over the profiles the file created: the matcher is fitted on the file's
   rows, pairs within the file are scored, and each new profile against stored profiles that
   share a blocking key with it (read in batches, never the whole table). Sure pairs are merged
   (journaled with the matcher's evidence) when the source is trusted; the rest, and every
   group of more than two records, go to the review queue.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import yaml

from omnicommerce.customers import identity, linkage, traits
from omnicommerce.customers import repository as repo
from omnicommerce.customers.domain import (
    ANCHOR_TYPES,
    IDENTIFIER_TYPES,
    Identifier,
    IdentityRules,
    normalize_identifier,
)
from omnicommerce.customers.events import (
    CustomerCreated,
    CustomerImportCompleted,
    CustomerImportRequested,
    IdentityLinked,
)
from omnicommerce.customers.matching import PERSON_FIELDS, Matcher, PersonRecord
from omnicommerce.customers.matching.normalize import normalize_date
from omnicommerce.customers.privacy.service import suppressed
from omnicommerce.customers.schemas import ImportReport, RowProblem
from omnicommerce.customers.service import new_customer_row
from omnicommerce.platform import clock
from omnicommerce.platform.auth import Principal, Scope
from omnicommerce.platform.db import UnitOfWork
from omnicommerce.platform.errors import DomainError, InvalidInput, NotFound
from omnicommerce.platform.ids import new_id

IMPORT_CHANNEL = "import"
CHUNK = 1000  # rows per round of reads and multi-row INSERTs
SYNC_MAX_ROWS = 1000  # the API answers at once up to this many rows; above, 202 and a job
MAX_LISTED = 1000  # rejected rows and warnings listed in a report (all are counted)
FORMATS = ("csv", "jsonl")
TRAIT = "trait:"
IGNORE = "ignore"
# Matcher fields kept per account (national_id is compared within the file only, never stored).
STORED_FIELDS = set(repo.ATTRIBUTE_FIELDS)
FIELD_LENGTHS = {
    "given_name": 100,
    "surname": 100,
    "date_of_birth": 40,
    "street_number": 20,
    "address_1": 200,
    "address_2": 200,
    "suburb": 100,
    "postcode": 20,
    "state": 50,
    "national_id": 40,
}
# Column names understood without a mapping file (compared lower-case, without spaces, - and _).
DEFAULT_COLUMNS = {
    **{f.replace("_", ""): f for f in PERSON_FIELDS},
    **{t.replace("_", ""): t for t in IDENTIFIER_TYPES},
    "firstname": "given_name",
    "first": "given_name",
    "lastname": "surname",
    "familyname": "surname",
    "dob": "date_of_birth",
    "birthday": "date_of_birth",
    "birthdate": "date_of_birth",
    "zip": "postcode",
    "zipcode": "postcode",
    "postalcode": "postcode",
    "city": "suburb",
    "town": "suburb",
    "street": "address_1",
    "address": "address_1",
    "mobile": "phone",
    "userid": "user_id",
}


class InvalidImportMapping(InvalidInput):
    code = "invalid-import-mapping"
    title = "Invalid import mapping"


class UnreadableImport(InvalidInput):
    code = "unreadable-import"
    title = "Unreadable import file"


# 40 characters: the source becomes the created_by of the profiles an import makes.
_SOURCE = re.compile(r"^[A-Za-z0-9_.:\-]{1,40}$")


def check_source(source: str) -> None:
    """A source names a system (``crm``, ``loyalty``): the identity rules' trust is keyed by it."""
    if not _SOURCE.match(source):
        raise InvalidInput(
            "source must be 1 to 40 letters, digits or . _ : - (such as 'crm' or 'loyalty')", field="source"
        )


class ImportNotFound(NotFound):
    code = "import-not-found"
    title = "Import not found"


# --- mapping and rows -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ColumnMapping:
    """File column → ``given_name`` … (a matcher field), ``email`` … (an identifier type),
    ``trait:<name>`` or ``ignore``. Without columns, names are read by :data:`DEFAULT_COLUMNS`."""

    columns: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_document(cls, doc: Any) -> ColumnMapping:
        if doc is None:
            return cls()
        columns = doc.get("columns", doc) if isinstance(doc, dict) else None
        if not isinstance(columns, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in columns.items()
        ):
            raise InvalidImportMapping("a mapping is an object of file column → target (strings)")
        bad = sorted(c for c, t in columns.items() if not _valid_target(t))
        if bad:
            raise InvalidImportMapping(
                f"unknown targets for columns {', '.join(bad)}: use a field ({', '.join(PERSON_FIELDS)}), "
                f"an identifier type ({', '.join(IDENTIFIER_TYPES)}), 'trait:<name>' or 'ignore'",
                field="mapping",
            )
        return cls(dict(columns))

    def target(self, column: str) -> str | None:
        if self.columns:
            target = self.columns.get(column)
        else:
            target = DEFAULT_COLUMNS.get(column.lower().replace(" ", "").replace("-", "").replace("_", ""))
        return None if target in (None, IGNORE) else target

    def to_document(self) -> dict[str, Any]:
        return {"columns": dict(self.columns)}


def _valid_target(target: str) -> bool:
    if target.startswith(TRAIT):
        return 0 < len(target) - len(TRAIT) <= 100
    return target in PERSON_FIELDS or target in IDENTIFIER_TYPES or target == IGNORE


def load_mapping(text: str) -> ColumnMapping:
    """A mapping file, JSON or YAML (``columns:`` then ``File column: target`` lines)."""
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidImportMapping("the mapping is neither JSON nor YAML", field="mapping") from exc
    return ColumnMapping.from_document(doc)


def read_rows(text: str, fmt: str) -> Iterator[dict[str, Any] | str]:
    """The file's records as dicts; a line that is no JSON object comes back as its problem."""
    if fmt == "csv":
        for row in csv.DictReader(io.StringIO(text)):
            yield {k: v for k, v in row.items() if isinstance(k, str)}
        return
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            yield "not valid JSON"
            continue
        yield record if isinstance(record, dict) else "not a JSON object"


def format_of(name: str | None, content_type: str | None = None) -> str:
    """``csv`` or ``jsonl`` from a file name or media type."""
    hint = (name or "").lower()
    media = (content_type or "").split(";")[0].strip().lower()
    if hint.endswith(".csv") or media in ("text/csv", "application/csv"):
        return "csv"
    if hint.endswith((".jsonl", ".ndjson")) or media in ("application/x-ndjson", "application/jsonl"):
        return "jsonl"
    raise UnreadableImport("send CSV (text/csv, .csv) or JSON Lines (application/x-ndjson, .jsonl)")


@dataclass(slots=True)
class _Row:
    index: int  # 1-based record number in the file
    person: dict[str, str]
    identifiers: list[Identifier]
    traits: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    customer_id: str | None = None  # the profile the row ended in
    account_id: str | None = None  # the account its attributes belong to


def _parse(
    index: int, raw: dict[str, Any] | str, mapping: ColumnMapping, rules: IdentityRules
) -> _Row | RowProblem:
    """One row mapped and validated; every problem is named, the row is rejected on any."""
    if isinstance(raw, str):
        return RowProblem(row=index, reasons=[raw])
    row = _Row(index, {}, [], {})
    reasons: list[str] = []
    for column, value in raw.items():
        target = mapping.target(column)
        if target is None or value is None or value == "":
            continue
        if target.startswith(TRAIT):
            row.traits[target[len(TRAIT) :]] = value
            continue
        text = (
            str(value).strip()
            if isinstance(value, str | int | float) and not isinstance(value, bool)
            else None
        )
        if text is None:
            reasons.append(f"{column}: expected text, got {type(value).__name__}")
        elif any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text):
            reasons.append(f"{column}: contains control characters")
        elif text:
            _take(row, target, text, reasons)
    if b"\\u0000" in orjson.dumps(row.traits):
        reasons.append("a trait contains a NUL character")
    for ident in row.identifiers:
        if rules.is_blocked(ident):
            reasons.append(f"{ident.type}: the value is on the blocked list")
    if not reasons and not any(i.type in ANCHOR_TYPES for i in row.identifiers):
        reasons.append(f"no identifier: a row needs one of {', '.join(sorted(ANCHOR_TYPES))}")
    return RowProblem(row=index, reasons=reasons) if reasons else row


def _take(row: _Row, target: str, text: str, reasons: list[str]) -> None:
    if target in IDENTIFIER_TYPES:
        try:
            ident = normalize_identifier(target, text)
        except InvalidInput as exc:
            reasons.append(f"{target}: {exc.detail}")
            return
        row.identifiers.append(ident)
        if target in PERSON_FIELDS:  # email and phone are compared by the matcher too
            row.person.setdefault(target, ident.value)
        return
    if len(text) > FIELD_LENGTHS[target]:
        reasons.append(f"{target}: longer than {FIELD_LENGTHS[target]} characters")
    elif target == "date_of_birth":
        digits = normalize_date(text)
        if digits is None:
            row.warnings.append("date_of_birth is not a date (YYYY-MM-DD or DD/MM/YYYY): ignored")
        else:
            row.person[target] = f"{digits[:4]}-{digits[4:6]}-{digits[6:]}"
    else:
        row.person[target] = text


# --- running an import ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Tally:
    created: int = 0
    updated: int = 0
    merged_deterministic: int = 0
    rejected: list[RowProblem] = field(default_factory=list)
    warnings: list[RowProblem] = field(default_factory=list)
    created_ids: set[str] = field(default_factory=set)


Progress = Callable[[int], None]


def import_rows(
    uow: UnitOfWork,
    actor: Principal,
    records: Iterable[dict[str, Any] | str],
    *,
    mapping: ColumnMapping,
    source: str,
    import_id: str | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Run a whole import in ``uow`` and return its report (the caller commits)."""
    actor.require(Scope.ADMIN)
    check_source(source)
    started = time.perf_counter()
    import_id = import_id or new_id("imp")
    rules = identity.load_rules(uow)
    tally = _Tally()
    rows: list[_Row] = []
    chunk: list[_Row] = []
    seen_columns: set[str] = set()
    total = 0
    for index, raw in enumerate(records, start=1):
        total = index
        if isinstance(raw, dict):
            seen_columns.update(raw)
        parsed = _parse(index, raw, mapping, rules)
        if isinstance(parsed, RowProblem):
            tally.rejected.append(parsed)
            continue
        chunk.append(parsed)
        if len(chunk) == CHUNK:
            rows += _deterministic(uow, rules, chunk, tally, source=source, import_id=import_id)
            chunk = []
            if progress is not None:
                progress(index)
    rows += _deterministic(uow, rules, chunk, tally, source=source, import_id=import_id)
    if progress is not None:
        progress(total)
    _store_attributes_and_traits(uow, rows, source=source, import_id=import_id)
    tally.warnings += [RowProblem(row=r.index, reasons=r.warnings) for r in rows if r.warnings]
    applied = _probabilistic(uow, rules, rows, tally, source=source, import_id=import_id)
    tally.warnings += [RowProblem(row=0, reasons=[f"not merged: {r}"]) for r in applied.refused]
    report = ImportReport(
        id=import_id,
        status="done",
        source=source,
        rows=total,
        created=tally.created,
        updated=tally.updated,
        merged_deterministic=tally.merged_deterministic,
        merged_probabilistic=len(applied.merged),
        queued_for_review=applied.reviews,
        rejected=len(tally.rejected),
        rejected_rows=tally.rejected[:MAX_LISTED],
        warnings=tally.warnings[:MAX_LISTED],
        unmapped_columns=sorted(c for c in seen_columns if mapping.target(c) is None),
        seconds=round(time.perf_counter() - started, 3),
    )
    uow.emit(
        CustomerImportCompleted(
            import_id=import_id,
            source=source,
            created=report.created,
            updated=report.updated,
            merged=report.merged_deterministic + report.merged_probabilistic,
            queued_for_review=report.queued_for_review,
            rejected=report.rejected,
        )
    )
    return report


def _deterministic(
    uow: UnitOfWork, rules: IdentityRules, chunk: list[_Row], tally: _Tally, *, source: str, import_id: str
) -> list[_Row]:
    """Attach each row of the chunk to its profile by identifiers (creating, linking, merging)."""
    if not chunk:
        return []
    kept = _drop_suppressed(uow, chunk, tally)
    idents = list({i for r in kept for i in r.identifiers})
    identity.adopt_accounts(uow, idents, source=source)  # accounts made before the graph saw them
    owners: dict[Identifier, identity.Owner] = {
        i: (r.customer_id, r.origin_customer_id) for i, r in repo.identity_owners(uow.conn, idents).items()
    }
    pending: list[_Row] = []
    for row in kept:
        profiles = {owners[i][0] for i in row.identifiers if i in owners}
        unknown = [i for i in row.identifiers if i not in owners]
        if not profiles:
            _plan_new_profile(rules, row, owners)
            pending.append(row)
        elif len(profiles) == 1 and not unknown:
            row.customer_id, row.account_id = _owner_of(rules, row, owners)
            if row.customer_id in tally.created_ids or any(p.customer_id == row.customer_id for p in pending):
                tally.merged_deterministic += 1  # a duplicate of an earlier row of this file
            else:
                tally.updated += 1
        else:
            _create_pending(uow, pending, tally, source=source)
            pending = []
            _resolve(uow, rules, row, owners, tally, source=source, import_id=import_id)
    _create_pending(uow, pending, tally, source=source)
    return kept


def _drop_suppressed(uow: UnitOfWork, chunk: list[_Row], tally: _Tally) -> list[_Row]:
    """Identifiers of people whose data was erased must not build a profile again."""
    erased = suppressed(uow, {i for r in chunk for i in r.identifiers})
    if not erased:
        return chunk
    kept = []
    for row in chunk:
        hits = sorted({t for t, v in erased if Identifier(t, v) in row.identifiers})
        if hits:
            tally.rejected.append(
                RowProblem(
                    row=row.index,
                    reasons=[
                        f"{t}: suppressed (it belonged to a person whose data was erased)" for t in hits
                    ],
                )
            )
        else:
            kept.append(row)
    return kept


def _plan_new_profile(rules: IdentityRules, row: _Row, owners: dict[Identifier, identity.Owner]) -> None:
    """A new profile id for a row no identifier of which is known; later rows of the chunk that
    share one find it in ``owners``."""
    row.customer_id = row.account_id = new_id("cus")
    wanted = identity.within_limits(rules, {}, row.identifiers)
    for ident in row.identifiers:
        if ident in wanted:
            owners[ident] = (row.customer_id, row.customer_id)
        else:
            row.warnings.append(f"{ident.type} not linked: the profile has its limit of {ident.type}")
    row.identifiers = wanted


def _create_pending(uow: UnitOfWork, pending: list[_Row], tally: _Tally, *, source: str) -> None:
    """The planned profiles in two multi-row INSERTs (profiles, identifiers)."""
    if not pending:
        return
    now = clock.now()
    profiles = []
    for row in pending:
        values = new_customer_row(
            email=next((i.value for i in row.identifiers if i.type == "email"), None),
            phone=next((i.value for i in row.identifiers if i.type == "phone"), None),
            channel=IMPORT_CHANNEL,
            created_by=source,
            first_name=row.person.get("given_name"),
            last_name=row.person.get("surname"),
        )
        values["id"] = row.customer_id
        profiles.append(values)
    identities = [
        identity.identity_row(i, row.customer_id or "", row.customer_id or "", source, now)
        for row in pending
        for i in row.identifiers
    ]
    repo.insert_customers(uow.conn, profiles)
    claimed = repo.insert_identities(uow.conn, identities)
    if len(claimed) != len(identities):
        # A concurrent request claimed one of them between our read and this insert: the
        # whole import is retried by the caller rather than half-linked.
        raise identity.IdentityContention(
            "identifiers in this file were claimed concurrently; retry the import"
        )
    for row in pending:
        assert row.customer_id is not None
        uow.emit(CustomerCreated(customer_id=row.customer_id, channel=IMPORT_CHANNEL))
        uow.emit(
            IdentityLinked(
                customer_id=row.customer_id,
                identifier_types=sorted({i.type for i in row.identifiers}),
                source=source,
            )
        )
        tally.created_ids.add(row.customer_id)
    tally.created += len(pending)


def _resolve(
    uow: UnitOfWork,
    rules: IdentityRules,
    row: _Row,
    owners: dict[Identifier, identity.Owner],
    tally: _Tally,
    *,
    source: str,
    import_id: str,
) -> None:
    """The identity graph's own path, for rows that link or merge (rare in a clean file)."""
    before = {owners[i][0] for i in row.identifiers if i in owners}
    res = identity.resolve(
        uow,
        rules,
        row.identifiers,
        source=source,
        channel=IMPORT_CHANNEL,
        message_id=f"{import_id}:{row.index}",
        known=owners,
    )
    row.warnings += res.warnings
    row.customer_id, row.account_id = res.customer_id, res.origin_id
    if res.merged:
        for key, (cid, origin) in list(owners.items()):
            owners[key] = (res.merged.get(cid, cid), origin)
    owners.update(res.owners)
    if res.customer_id is not None and res.customer_id not in before and not res.merged:
        tally.created += 1  # e.g. a second adult sharing a phone: a profile of their own
        tally.created_ids.add(res.customer_id)
    elif res.merged:
        tally.merged_deterministic += len(res.merged)
    else:
        tally.updated += 1


def _owner_of(
    rules: IdentityRules, row: _Row, owners: Mapping[Identifier, identity.Owner]
) -> tuple[str, str]:
    top = min((i for i in row.identifiers if i in owners), key=lambda i: rules.rank(i.type))
    return owners[top]


def _store_attributes_and_traits(
    uow: UnitOfWork, rows: Sequence[_Row], *, source: str, import_id: str
) -> None:
    """Matcher fields per account (first source wins), names where the profile has none, and the
    row's traits as an ``identify`` event on the profile's timeline."""
    linkage.index_records(
        uow, [_record(r) for r in rows if r.account_id and _stored_fields(r)], source=source
    )
    repo.fill_names(
        uow.conn,
        [
            {"b_id": r.account_id, "b_first": r.person.get("given_name"), "b_last": r.person.get("surname")}
            for r in rows
            if r.account_id and (r.person.get("given_name") or r.person.get("surname"))
        ],
    )
    now = clock.now()
    repo.insert_events(
        uow.conn,
        [
            {
                "id": new_id("cev"),
                "message_id": f"{import_id}:{r.index}",
                "type": "identify",
                "name": None,
                "customer_id": r.customer_id,
                "origin_customer_id": r.account_id,
                "anonymous_id": None,
                "user_id": None,
                "channel": None,
                "source": source,
                "timestamp": now,
                "received_at": now,
                "payload": orjson.dumps({"traits": r.traits, "context": {"import_id": import_id}}).decode(),
            }
            for r in rows
            if r.traits and r.customer_id
        ],
    )
    # The traits are the profile's custom traits too (a later identify, by its time, wins).
    told = [r for r in rows if r.traits and r.account_id]
    statements = [traits.TraitStatement(r.account_id or "", r.traits, now, source) for r in told]
    for n, warnings in traits.record_custom_traits(uow, statements).items():
        told[n].warnings += warnings


def _stored_fields(row: _Row) -> bool:
    return any(name in STORED_FIELDS for name in row.person)


def _record(row: _Row, record_id: str | None = None) -> PersonRecord:
    return PersonRecord(id=record_id or row.account_id or "", **{k: row.person.get(k) for k in PERSON_FIELDS})


def _probabilistic(
    uow: UnitOfWork, rules: IdentityRules, rows: Sequence[_Row], tally: _Tally, *, source: str, import_id: str
) -> linkage.Applied:
    """Score the profiles this file created, within the file and against stored profiles."""
    created = set(tally.created_ids)
    firsts: dict[str, _Row] = {}
    for row in rows:
        if row.account_id in created and row.account_id not in firsts:
            firsts[row.account_id] = row
    new_records = [
        _record(r) for r in firsts.values() if r.person.get("given_name") or r.person.get("surname")
    ]
    repo.mark_matched(uow.conn, created, now=clock.now())  # the customer.created subscriber skips them
    if not new_records:
        return linkage.Applied()
    fit_on = [_record(r, f"row:{r.index}") for r in rows]
    if len(fit_on) < linkage.FIT_SAMPLE:  # a small file learns together with stored profiles
        sample = repo.sample_person_rows(uow.conn, linkage.FIT_SAMPLE - len(fit_on))
        fit_on += [linkage.record_of(r) for r in sample if r.id not in created]
    matcher = Matcher().fit(fit_on)
    scored = [
        linkage.Scored(p, d) for p in matcher.match(new_records) if (d := matcher.decide(p)) != "distinct"
    ]
    scored += linkage.score_against_stored(uow, matcher, new_records, exclude=created)
    # Transitive groups can chain A-B-C although A and C alone would not merge: a person decides.
    crowded = {i for group in matcher.merge_groups([s.pair for s in scored]) if len(group) > 2 for i in group}
    scored = [
        linkage.Scored(s.pair, "review") if s.decision == "merge" and s.pair.left_id in crowded else s
        for s in scored
    ]
    return linkage.apply(uow, rules, matcher, scored, source=source, origin=import_id)


# --- the API's two speeds -----------------------------------------------------------------------


def start_import(
    uow: UnitOfWork,
    actor: Principal,
    *,
    text: str,
    fmt: str,
    mapping: ColumnMapping,
    source: str,
) -> tuple[ImportReport, int]:
    """Up to :data:`SYNC_MAX_ROWS` rows run now (200 with the report); a larger file is stored
    and run by a worker (202; the report is read with :func:`get_import`)."""
    actor.require(Scope.ADMIN)
    check_source(source)
    records = list(read_rows(text, fmt))
    import_id = new_id("imp")
    values = {
        "id": import_id,
        "source": source,
        "format": fmt,
        "mapping": orjson.dumps(mapping.to_document()).decode(),
        "rows": len(records),
        "created_by": actor.id,
        "created_at": clock.now(),
    }
    if len(records) > SYNC_MAX_ROWS:
        repo.insert_import(uow.conn, {**values, "status": "queued", "data": text})
        uow.emit(CustomerImportRequested(import_id=import_id))
        return ImportReport.queued(import_id, source, len(records)), 202
    report = import_rows(uow, actor, records, mapping=mapping, source=source, import_id=import_id)
    repo.insert_import(
        uow.conn, {**values, "status": "done", "report": report.model_dump_json(), "finished_at": clock.now()}
    )
    return report, 200


def record_import(
    uow: UnitOfWork, report: ImportReport, *, actor: Principal, fmt: str, mapping: ColumnMapping
) -> None:
    """Keep the report of an import run outside the API (the CLI)."""
    repo.insert_import(
        uow.conn,
        {
            "id": report.id,
            "status": report.status,
            "source": report.source,
            "format": fmt,
            "mapping": orjson.dumps(mapping.to_document()).decode(),
            "rows": report.rows,
            "report": report.model_dump_json(),
            "created_by": actor.id,
            "created_at": clock.now(),
            "finished_at": clock.now(),
        },
    )


def run_queued_import(uow: UnitOfWork, actor: Principal, import_id: str) -> ImportReport | None:
    """The worker's half: run a stored import once (a redelivered job finds it taken)."""
    row = repo.get_import(uow.conn, import_id)
    if row is None or not repo.claim_import(uow.conn, import_id):
        return None
    mapping = ColumnMapping.from_document(orjson.loads(row.mapping))
    try:
        report = import_rows(
            uow,
            actor,
            read_rows(row.data or "", row.format),
            mapping=mapping,
            source=row.source,
            import_id=import_id,
        )
    except DomainError as exc:
        # Nothing of it stays (a half-imported file would be worse than none); the import is
        # marked failed with the reason, so a redelivery does not run it again.
        uow.rollback()
        repo.claim_import(uow.conn, import_id)
        report = ImportReport.queued(import_id, row.source, row.rows, status="failed")
        report.warnings = [RowProblem(row=0, reasons=[exc.detail])]
        repo.finish_import(
            uow.conn, import_id, status="failed", report=report.model_dump_json(), now=clock.now()
        )
        return report
    repo.finish_import(uow.conn, import_id, status="done", report=report.model_dump_json(), now=clock.now())
    return report


def get_import(uow: UnitOfWork, actor: Principal, import_id: str) -> ImportReport:
    actor.require(Scope.ADMIN)
    row = repo.get_import(uow.conn, import_id)
    if row is None:
        raise ImportNotFound(f"no import {import_id!r}")
    if row.report is None:
        return ImportReport.queued(row.id, row.source, row.rows, status=row.status)
    return ImportReport.model_validate_json(row.report)
