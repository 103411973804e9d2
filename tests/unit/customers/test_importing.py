"""Pure parts of bulk onboarding: mappings, row validation, blocking keys, identify traits."""

import pytest

from omnicommerce.customers import importing, linkage
from omnicommerce.customers.domain import Identifier, IdentityRules
from omnicommerce.customers.matching import PersonRecord
from omnicommerce.customers.schemas import RowProblem


def test_mapping_refuses_unknown_targets_and_reads_default_names() -> None:
    with pytest.raises(importing.InvalidImportMapping) as exc:
        importing.ColumnMapping.from_document({"columns": {"Mail": "e-mail", "Name": "given_name"}})
    assert "Mail" in exc.value.detail and "Name" not in exc.value.detail
    default = importing.ColumnMapping()
    assert [default.target(c) for c in ("First Name", "ZIP", "e_mail", "Notes")] == [
        "given_name",
        "postcode",
        "email",
        None,
    ]
    yaml_mapping = importing.load_mapping("columns:\n  Tier: trait:tier\n  Skip: ignore\n")
    assert yaml_mapping.target("Tier") == "trait:tier" and yaml_mapping.target("Skip") is None


def test_rows_are_normalised_or_rejected_with_every_reason() -> None:
    mapping = importing.ColumnMapping()
    row = importing._parse(
        1,
        {"email": " Ada@Example.COM ", "first_name": "Ada", "dob": "10/12/1815", "tier": "gold"},
        mapping,
        IdentityRules(),
    )
    assert not isinstance(row, RowProblem)
    assert row.identifiers == [Identifier("email", "ada@example.com")]
    assert row.person["date_of_birth"] == "1815-12-10"
    bad = importing._parse(
        2, {"email": "nope", "phone": "12", "first_name": "x" * 101}, mapping, IdentityRules()
    )
    assert isinstance(bad, RowProblem) and len(bad.reasons) == 3
    anonymous = importing._parse(3, {"first_name": "Ada"}, mapping, IdentityRules())
    assert isinstance(anonymous, RowProblem) and anonymous.reasons[0].startswith("no identifier")
    assert importing._parse(4, "not a JSON object", mapping, IdentityRules()) == RowProblem(
        row=4, reasons=["not a JSON object"]
    )


def test_json_lines_and_formats() -> None:
    rows = list(importing.read_rows('{"email": "a@b.co"}\n\n[1]\n{oops\n', "jsonl"))
    assert rows == [{"email": "a@b.co"}, "not a JSON object", "not valid JSON"]
    assert (
        importing.format_of("x.NDJSON") == "jsonl"
        and importing.format_of(None, "text/csv; charset=utf-8") == "csv"
    )
    with pytest.raises(importing.UnreadableImport):
        importing.format_of("x.xlsx")


def test_blocking_keys_tolerate_a_surname_typo() -> None:
    a = PersonRecord(
        id="a", given_name="Bob", surname="Neumann", postcode="62701", date_of_birth="1984-07-02"
    )
    b = PersonRecord(
        id="b", given_name="Robert", surname="Neuman", postcode="62 701", date_of_birth="19840702"
    )
    assert linkage.match_keys(a) == linkage.match_keys(b)
    assert linkage.match_keys(PersonRecord(id="c", given_name="Ada")) == set()


def test_identify_traits_give_a_record() -> None:
    address = {"street": "12 St James Square", "postalCode": "SW1Y 4JH", "city": "London"}
    traits = {"firstName": "Ada", "lastName": "Byron", "birthday": "1815-12-10T00:00:00Z", "address": address}
    record = linkage.record_from_traits("cus_1", traits)
    assert record is not None
    assert (record.street_number, record.address_1, record.date_of_birth) == (
        "12",
        "St James Square",
        "1815-12-10",
    )
    assert linkage.record_from_traits("cus_1", {"plan": "pro"}) is None


def test_source_names_a_system() -> None:
    importing.check_source("crm:eu-1")
    for bad in ("", "x" * 41, "crm\x00", "two words"):
        with pytest.raises(importing.InvalidInput):
            importing.check_source(bad)
