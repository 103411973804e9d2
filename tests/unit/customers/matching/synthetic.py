"""A small, seeded population of people with planted duplicates (typos) and households."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from omnicommerce.customers.matching import PersonRecord

GIVEN = [
    "olivia", "liam", "emma", "noah", "amelia", "oliver", "sophia", "elijah", "charlotte", "james",
    "isabella", "william", "mia", "benjamin", "evelyn", "lucas", "harper", "henry", "camila", "theodore",
    "gianna", "jack", "abigail", "levi", "luna", "alexander", "ella", "jackson", "elizabeth", "mateo",
    "sofia", "daniel", "emily", "michael", "avery", "mason", "mila", "sebastian", "scarlett", "ethan",
]  # fmt: skip
SURNAMES = [
    "smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "rodriguez",
    "martinez", "hernandez", "lopez", "gonzalez", "wilson", "anderson", "thomas", "taylor", "moore",
    "jackson", "martin", "lee", "perez", "thompson", "white", "harris", "sanchez", "clark", "ramirez",
    "lewis", "robinson", "walker", "young", "allen", "king", "wright", "scott", "torres", "nguyen",
]  # fmt: skip
STREETS = [
    "maple avenue", "oak street", "pine road", "cedar lane", "elm court", "birch drive", "willow way",
    "spruce terrace", "aspen place", "chestnut boulevard", "hickory circuit", "magnolia crescent",
]  # fmt: skip
TOWNS = [
    ("springfield", "62701", "il"), ("riverside", "92501", "ca"), ("franklin", "37064", "tn"),
    ("greenville", "29601", "sc"), ("bristol", "06010", "ct"), ("clinton", "20735", "md"),
    ("fairview", "97024", "or"), ("salem", "97301", "or"), ("madison", "53703", "wi"),
]  # fmt: skip


@dataclass(frozen=True)
class Population:
    records: list[PersonRecord]
    duplicates: set[tuple[str, str]]  # (original id, duplicate id)
    households: set[tuple[str, str]]  # pairs of different people sharing surname and address


def typo(text: str, rng: random.Random) -> str:
    """One keyboard slip: a letter replaced, dropped, doubled, or two neighbours swapped."""
    if len(text) < 3:
        return text
    i = rng.randrange(1, len(text) - 1)
    kind = rng.choice(("replace", "drop", "double", "swap"))
    if kind == "replace":
        return text[:i] + rng.choice("aeiourstln") + text[i + 1 :]
    if kind == "drop":
        return text[:i] + text[i + 1 :]
    if kind == "double":
        return text[:i] + text[i] + text[i:]
    return text[: i - 1] + text[i] + text[i - 1] + text[i + 1 :]


def _person(rid: str, rng: random.Random, *, surname: str | None = None, home: dict[str, str] | None = None,
            phone: str | None = None) -> PersonRecord:  # fmt: skip
    given = rng.choice(GIVEN)
    surname = surname or rng.choice(SURNAMES)
    town, postcode, state = rng.choice(TOWNS)
    home = home or {
        "street_number": str(rng.randint(1, 400)),
        "address_1": rng.choice(STREETS),
        "suburb": town,
        "postcode": postcode,
        "state": state,
    }
    birth = f"{rng.randint(1940, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    return PersonRecord(
        id=rid,
        given_name=given.title(),
        surname=surname.title(),
        date_of_birth=birth,
        email=f"{given}.{surname}{rng.randint(1, 999)}@example.com",
        phone=phone or f"+1212{rng.randint(2000000, 9999999)}",
        **home,
    )


def _corrupt(record: PersonRecord, rid: str, rng: random.Random) -> PersonRecord:
    """The same person typed again elsewhere: two of these slips, never the id."""
    slips = rng.sample(["given", "surname", "birth", "email", "phone", "street", "drop_email"], 2)
    changed = replace(record, id=rid)
    for slip in slips:
        if slip == "given":
            changed = replace(changed, given_name=typo(changed.given_name or "", rng).upper())
        elif slip == "surname":
            changed = replace(changed, surname=typo(changed.surname or "", rng))
        elif slip == "birth":
            y, m, d = (changed.date_of_birth or "").split("-")
            changed = replace(changed, date_of_birth=f"{d}/{m}/{y}" if rng.random() < 0.5 else f"{y}{d}{m}")
        elif slip == "email":
            changed = replace(changed, email=(changed.email or "").upper())
        elif slip == "phone":
            digits = (changed.phone or "")[2:]
            changed = replace(changed, phone=f"({digits[:3]}) {digits[3:6]}-{digits[6:]}")
        elif slip == "street":
            changed = replace(changed, address_1=typo(changed.address_1 or "", rng))
        else:
            changed = replace(changed, email=None)
    return changed


def population(people: int = 240, duplicates: int = 60, households: int = 15, seed: int = 7) -> Population:
    rng = random.Random(seed)
    records = [_person(f"p{i:04d}", rng) for i in range(people)]
    planted = set()
    for n, original in enumerate(rng.sample(records, duplicates)):
        dup = _corrupt(original, f"d{n:04d}", rng)
        records.append(dup)
        planted.add((original.id, dup.id))
    family_pairs = set()
    for h in range(households):
        head = _person(f"h{h:03d}a", rng)
        home = {k: getattr(head, k) for k in ("street_number", "address_1", "suburb", "postcode", "state")}
        member = _person(f"h{h:03d}b", rng, surname=(head.surname or "").lower(), home=home, phone=head.phone)
        while member.given_name == head.given_name:
            member = replace(member, given_name=rng.choice(GIVEN).title())
        records += [head, member]
        family_pairs.add((head.id, member.id))
    rng.shuffle(records)
    return Population(records, planted, family_pairs)
