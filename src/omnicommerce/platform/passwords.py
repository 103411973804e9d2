"""Password hashing (argon2id) for customers and staff. Plain passwords live only in the request
that carries them."""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _dummy_hash() -> str:
    return _dummy_hash_for(_hasher)


@lru_cache(maxsize=4)
def _dummy_hash_for(hasher: PasswordHasher) -> str:
    # Per hasher, so that the dummy costs what a real hash of the current parameters costs.
    return hasher.hash("dummy password that is never anyone's")


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant timing class: with no stored hash we still verify against a dummy one, so an
    unknown account and a wrong password take equally long."""
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
