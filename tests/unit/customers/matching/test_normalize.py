import pytest

from omnicommerce.customers.matching.normalize import (
    clean_text,
    is_calendar_date,
    normalize_code,
    normalize_date,
    normalize_email,
    normalize_name,
    normalize_phone,
    soundex,
)


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+1 (415) 555-2671", "US", "+14155552671"),
        ("415.555.2671", "US", "+14155552671"),
        ("0412 345 678", "AU", "+61412345678"),
        ("+44 20 7946 0958", "US", "+442079460958"),
    ],
)
def test_phone_becomes_e164(raw: str, region: str, expected: str) -> None:
    assert normalize_phone(raw, region) == expected


def test_invalid_phone_keeps_its_digits_so_a_typo_still_compares() -> None:
    assert normalize_phone("0412 345 678", "US") == "0412345678"
    assert normalize_phone("  ", "US") is None
    assert normalize_phone(None) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Ada.Lovelace@Example.COM ", "ada.lovelace@example.com"),
        ("ada+newsletter@example.com", "ada@example.com"),
        ("A.D.A@GoogleMail.com", "ada@gmail.com"),
        ("not-an-email", "not-an-email"),
        ("", None),
    ],
)
def test_email_normalisation(raw: str, expected: str | None) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1984-07-02", "19840702"),
        ("1984-7-2T10:00:00", "19840702"),
        ("19840702", "19840702"),
        ("02/07/1984", "19840702"),
        ("2.7.1984", "19840702"),
        ("19841302", "19841302"),  # month 13: a typo, kept digit for digit
        ("1984", None),
        ("someday", None),
        (None, None),
    ],
)
def test_dates_parse_into_yyyymmdd(raw: str | None, expected: str | None) -> None:
    assert normalize_date(raw) == expected


def test_calendar_check_spots_typed_impossible_dates() -> None:
    assert is_calendar_date("19840229")
    assert not is_calendar_date("19841302")


def test_names_fold_case_accents_punctuation_and_nicknames() -> None:
    assert normalize_name("  José-María  O'Neil ") == "jose maria o neil"
    assert normalize_name("BOB") == "robert"
    assert normalize_name("Bobby") == normalize_name("Robert")
    assert normalize_name(" ,. ") is None
    assert clean_text("Hoppers   Crossing") == "hoppers crossing"


def test_codes_keep_only_letters_and_digits() -> None:
    assert normalize_code(" SW1A 1AA ") == "sw1a1aa"
    assert normalize_code("12-B") == "12b"


@pytest.mark.parametrize(
    ("name", "code"),
    [("robert", "r163"), ("rupert", "r163"), ("ashcraft", "a261"), ("tymczak", "t522"), ("pfister", "p236")],
)
def test_soundex(name: str, code: str) -> None:
    assert soundex(name) == code


def test_soundex_of_nothing_is_none() -> None:
    assert soundex(None) is None
    assert soundex("123") is None
