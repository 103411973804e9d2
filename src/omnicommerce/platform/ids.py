"""Sortable, prefixed identifiers such as ``ord_01J9Z3...``.

48 bits of milliseconds then 80 random bits, in Crockford base32 (ULID layout): ids sort by
creation time, which keeps B-tree inserts local and makes cursor pagination by id natural.
"""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


# Two characters (10 bits) per lookup: ids are minted several times per request.
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]
_SHIFTS = {length: range(5 * length - 10, -1, -10) for length in (10, 16)}


def _encode(value: int, length: int) -> str:
    """``value`` as ``length`` (10 or 16) Crockford base32 digits, most significant first."""
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in _SHIFTS[length]])


def new_id(prefix: str) -> str:
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    return f"{prefix}_{_encode(millis, 10)}{_encode(rand, 16)}"
