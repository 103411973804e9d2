"""Normalisation: every field in one canonical spelling before anything is compared.

Lenient by design: a value that cannot be parsed becomes its cleaned text (or None), never an
error, because a typo is exactly what the matcher is there to see through.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from functools import lru_cache

import phonenumbers

_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_NON_DIGIT = re.compile(r"\D+")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})")
_DMY_DATE = re.compile(r"^(\d{1,2})[/.](\d{1,2})[/.](\d{4})$")
_GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})

# Common English diminutives: compared as the formal name so "Bob" meets "Robert" at `exact`.
_NICKNAMES: dict[str, str] = {
    "bob": "robert",
    "rob": "robert",
    "bobby": "robert",
    "robbie": "robert",
    "bill": "william",
    "will": "william",
    "billy": "william",
    "jim": "james",
    "jimmy": "james",
    "jamie": "james",
    "mike": "michael",
    "mick": "michael",
    "mikey": "michael",
    "dave": "david",
    "davy": "david",
    "dick": "richard",
    "rick": "richard",
    "rich": "richard",
    "tom": "thomas",
    "tommy": "thomas",
    "tony": "anthony",
    "chris": "christopher",
    "nick": "nicholas",
    "dan": "daniel",
    "danny": "daniel",
    "joe": "joseph",
    "joey": "joseph",
    "ben": "benjamin",
    "sam": "samuel",
    "alex": "alexander",
    "andy": "andrew",
    "drew": "andrew",
    "matt": "matthew",
    "pete": "peter",
    "steve": "stephen",
    "ted": "edward",
    "ed": "edward",
    "eddie": "edward",
    "greg": "gregory",
    "jon": "jonathan",
    "johnny": "john",
    "kate": "katherine",
    "katie": "katherine",
    "kathy": "katherine",
    "cathy": "catherine",
    "liz": "elizabeth",
    "beth": "elizabeth",
    "betty": "elizabeth",
    "lizzie": "elizabeth",
    "maggie": "margaret",
    "meg": "margaret",
    "peggy": "margaret",
    "jen": "jennifer",
    "jenny": "jennifer",
    "sue": "susan",
    "susie": "susan",
    "becky": "rebecca",
    "vicky": "victoria",
    "patty": "patricia",
    "trish": "patricia",
    "mandy": "amanda",
    "debbie": "deborah",
}
_SOUNDEX_CODES = {
    **dict.fromkeys("bfpv", "1"), **dict.fromkeys("cgjkqsxz", "2"), **dict.fromkeys("dt", "3"),
    "l": "4", **dict.fromkeys("mn", "5"), "r": "6",
}  # fmt: skip


@lru_cache(maxsize=1 << 16)  # names, streets and towns repeat across records
def clean_text(raw: str | None) -> str | None:
    """Lower case, accents folded, punctuation to spaces, whitespace collapsed; '' → None."""
    if raw is None:
        return None
    folded = unicodedata.normalize("NFKD", str(raw)).encode("ascii", "ignore").decode().lower()
    text = " ".join(_NON_ALNUM.sub(" ", folded).split())
    return text or None


def normalize_name(raw: str | None) -> str | None:
    """A cleaned name with a known diminutive replaced by its formal form."""
    name = clean_text(raw)
    if name is None:
        return None
    return _NICKNAMES.get(name, name)


def normalize_code(raw: str | None) -> str | None:
    """Identifiers, postcodes, street numbers: lower-case letters and digits only."""
    text = clean_text(raw)
    return text.replace(" ", "") if text else None


def normalize_date(raw: str | None) -> str | None:
    """``YYYYMMDD`` from ISO, ``YYYYMMDD`` or ``DD/MM/YYYY``.

    Eight digits are kept even when they are no calendar date (``19871302``): a typo in the
    day or month must still be comparable digit by digit.
    """
    if raw is None:
        return None
    text = str(raw).strip()
    if iso := _ISO_DATE.match(text):
        year, month, day = iso.groups()
        return f"{year}{int(month):02d}{int(day):02d}"
    if dmy := _DMY_DATE.match(text):
        day, month, year = dmy.groups()
        return f"{year}{int(month):02d}{int(day):02d}"
    digits = _NON_DIGIT.sub("", text)
    return digits if len(digits) == 8 else None


def is_calendar_date(yyyymmdd: str) -> bool:
    try:
        date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return False
    return True


def normalize_phone(raw: str | None, region: str = "US") -> str | None:
    """E.164 (``+14155550123``); an unparseable or invalid number keeps its digits."""
    if raw is None or not str(raw).strip():
        return None
    text = str(raw).strip()
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is not None and phonenumbers.is_valid_number(number):
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    digits = _NON_DIGIT.sub("", text)
    return digits or None


def normalize_email(raw: str | None) -> str | None:
    """Trimmed and lower-cased, ``+tag`` dropped; Gmail ignores dots in the mailbox name too."""
    if raw is None:
        return None
    email = str(raw).strip().lower()
    if email.count("@") != 1:
        return email or None
    local, domain = email.split("@")
    local = local.split("+", 1)[0]
    if domain in _GMAIL_DOMAINS:
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}" if local and domain else None


@lru_cache(maxsize=1 << 16)
def soundex(name: str | None) -> str | None:
    """American Soundex of the first word (``robert`` → ``r163``): a blocking key, not a score."""
    if not name:
        return None
    word = name.split()[0]
    letters = [c for c in word if "a" <= c <= "z"]
    if not letters:
        return None
    first, codes = letters[0], []
    previous = _SOUNDEX_CODES.get(first, "")
    for char in letters[1:]:
        code = _SOUNDEX_CODES.get(char, "")
        if code and code != previous:
            codes.append(code)
        if char not in "hw":  # h and w do not separate two equal codes
            previous = code
    return (first + "".join(codes) + "000")[:4]
