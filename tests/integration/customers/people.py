"""Synthetic customer files for import tests: distinct people, planted duplicates that share no
identifier (another email, a typo, a nickname), and two-person households."""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass

GIVEN = [
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sophia", "Lucas", "Isabella", "Mason",
    "Mia", "Ethan", "Harper", "Logan", "Amelia", "Aiden", "Evelyn", "Jackson", "Abigail", "Sebastian",
    "Robert", "William", "Katherine", "Margaret", "Theodore", "Beatrice", "Florence", "Gideon",
]  # fmt: skip
SURNAMES = [
    "Zylberstein", "Okonkwo", "Haldane", "Marchetti", "Villanueva", "Kowalczyk", "Lindqvist",
    "Papadakis", "Rosenthal", "Abernathy", "Castellanos", "Delacroix", "Fairweather", "Gunnarsson",
    "Hargreaves", "Ishikawa", "Jankowski", "Kirkpatrick", "Lombardi", "Montgomery", "Nakamura",
    "Oyelaran", "Pemberton", "Quintero", "Rasmussen", "Szabo", "Thorncastle", "Urquhart", "Vasquez",
    "Whitcombe", "Yamamoto", "Zimmermann", "Achterberg", "Blackwood", "Crowther", "Dunleavy",
]  # fmt: skip
STREETS = ["Stanley Street", "Ocean Avenue", "Maple Road", "Harbour Lane", "Kings Way", "Elm Court"]
NICKNAMES = {"Robert": "Bob", "William": "Bill", "Katherine": "Kate", "Margaret": "Peggy"}
COLUMNS = [
    "Customer No",
    "First Name",
    "Last Name",
    "DOB",
    "E-mail",
    "Mobile",
    "Street No",
    "Street",
    "Zip",
    "Tier",
]
MAPPING = {
    "columns": {
        "Customer No": "pos_customer",
        "First Name": "given_name",
        "Last Name": "surname",
        "DOB": "date_of_birth",
        "E-mail": "email",
        "Mobile": "phone",
        "Street No": "street_number",
        "Street": "address_1",
        "Zip": "postcode",
        "Tier": "trait:tier",
    }
}


@dataclass
class People:
    rows: list[dict[str, str]]
    duplicate_pairs: list[tuple[int, int]]  # 1-based row numbers of the same person
    household_pairs: list[tuple[int, int]]  # two people at one address

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(self.rows)
        return out.getvalue()


def _typo(name: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(name) - 1)
    return name[:i] + name[i + 1] + name[i] + name[i + 2 :]  # two neighbours swapped


def people(n: int, *, duplicates: int = 0, households: int = 0, seed: int = 7, prefix: str = "p") -> People:
    rng = random.Random(seed)
    rows: list[dict[str, str]] = []
    base: list[dict[str, str]] = []
    for i in range(n):
        given, surname = rng.choice(GIVEN), rng.choice(SURNAMES)
        base.append(
            {
                "Customer No": f"{prefix}-{i}",
                "First Name": given,
                "Last Name": surname,
                "DOB": f"{rng.randint(1950, 2004)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                "E-mail": f"{given}.{surname}.{prefix}{i}@example.com".lower(),
                "Mobile": f"+1415{2000000 + i + (sum(map(ord, prefix)) % 100) * 10000:07d}",
                "Street No": str(rng.randint(1, 300)),
                "Street": rng.choice(STREETS),
                "Zip": f"{rng.randint(10000, 99999)}",
                "Tier": rng.choice(["gold", "silver", ""]),
            }
        )
    rows = list(base)
    dup_pairs = []
    for i in rng.sample(range(n), duplicates):
        person = base[i]
        twin = dict(person)
        twin["Customer No"] = f"{prefix}-dup-{i}"
        twin["E-mail"] = f"work.{prefix}{i}@corp.example.org"
        twin["Mobile"] = ""
        given = person["First Name"]
        if given in NICKNAMES:
            twin["First Name"] = NICKNAMES[given]
        else:
            twin["Last Name"] = _typo(person["Last Name"], rng)
        rows.append(twin)
        dup_pairs.append((i + 1, len(rows)))
    house_pairs = []
    for i in rng.sample(range(n), households):
        person = base[i]
        partner = dict(person)
        partner["Customer No"] = f"{prefix}-home-{i}"
        partner["First Name"] = next(g for g in GIVEN if g[0] != person["First Name"][0])
        partner["DOB"] = f"{int(person['DOB'][:4]) - 3}-03-14"
        partner["E-mail"] = f"partner.{prefix}{i}@example.net"
        rows.append(partner)
        house_pairs.append((i + 1, len(rows)))
    return People(rows, dup_pairs, house_pairs)
