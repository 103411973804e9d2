import pytest
from hypothesis import given
from hypothesis import strategies as st

from omnicommerce.customers.domain import (
    ContactRequired,
    InvalidEmail,
    InvalidPhone,
    normalize_contact,
    normalize_email,
    normalize_phone,
    parse_identifier,
)


@pytest.mark.parametrize("raw", ["Ada@Example.COM", "  ada@example.com\n", "ADA@EXAMPLE.COM "])
def test_email_is_trimmed_and_lower_cased(raw: str) -> None:
    assert normalize_email(raw) == "ada@example.com"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "ada",
        "ada@",
        "@example.com",
        "ada@example",
        "a b@example.com",
        "ada@@example.com",
        "x" * 250 + "@example.com",
    ],
)
def test_invalid_email_is_422(raw: str) -> None:
    with pytest.raises(InvalidEmail) as err:
        normalize_email(raw)
    assert err.value.status == 422
    assert "email" in err.value.detail


@pytest.mark.parametrize(
    "raw", ["(415) 555-0123", "415.555.0123", "+1 415 555 0123", " 4155550123 ", "+14155550123"]
)
def test_us_phone_formats_become_e164(raw: str) -> None:
    assert normalize_phone(raw) == "+14155550123"


def test_international_phone_keeps_its_country() -> None:
    assert normalize_phone("+44 20 7946 0958") == "+442079460958"


@pytest.mark.parametrize("raw", ["", "hello", "123", "+1 000 000 0000"])
def test_invalid_phone_is_422(raw: str) -> None:
    with pytest.raises(InvalidPhone) as err:
        normalize_phone(raw)
    assert err.value.status == 422


def test_contact_needs_email_or_phone() -> None:
    with pytest.raises(ContactRequired):
        normalize_contact(None, None)
    assert normalize_contact(None, "4155550123") == (None, "+14155550123")


def test_identifier_is_email_or_phone_or_nothing() -> None:
    assert parse_identifier("Ada@Example.com") == ("email", "ada@example.com")
    assert parse_identifier("(415) 555-0123") == ("phone", "+14155550123")
    assert parse_identifier("not-an-identifier") is None


_local = st.text(
    alphabet=st.characters(blacklist_characters="@ \t\n\r\x0b\x0c", blacklist_categories=["Cs", "Z", "Cc"]),
    min_size=1,
    max_size=20,
)
_label = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", min_size=1, max_size=12
)


@given(local=_local, domain=_label, tld=_label, pad=st.sampled_from(["", " ", "\t", "  \n"]))
def test_email_normalization_is_idempotent(local: str, domain: str, tld: str, pad: str) -> None:
    try:
        once = normalize_email(pad + f"{local}@{domain}.{tld}" + pad)
    except InvalidEmail:
        return
    assert normalize_email(once) == once
    assert once == once.strip().lower()


@given(st.text(max_size=30))
def test_email_normalization_is_idempotent_on_any_text(raw: str) -> None:
    try:
        once = normalize_email(raw)
    except InvalidEmail:
        return
    assert normalize_email(once) == once


@given(
    digits=st.text(alphabet="0123456789", min_size=7, max_size=15),
    prefix=st.sampled_from(["", "+", "+1", "+44", "+49 ", "(", "00"]),
    sep=st.sampled_from(["", " ", "-", "."]),
)
def test_phone_normalization_is_idempotent(digits: str, prefix: str, sep: str) -> None:
    raw = prefix + sep.join([digits[:3], digits[3:6], digits[6:]])
    try:
        once = normalize_phone(raw)
    except InvalidPhone:
        return
    assert once.startswith("+")
    assert normalize_phone(once) == once
