"""Money as integer minor units plus an ISO 4217 currency. Never floats."""

from __future__ import annotations

from dataclasses import dataclass

from omnicommerce.platform.errors import DomainError

# Minor-unit exponents for the currencies we accept (ISO 4217).
CURRENCY_EXPONENTS: dict[str, int] = {
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "CAD": 2,
    "AUD": 2,
    "CHF": 2,
    "SEK": 2,
    "NOK": 2,
    "DKK": 2,
    "PLN": 2,
    "CZK": 2,
    "MXN": 2,
    "BRL": 2,
    "INR": 2,
    "CNY": 2,
    "SGD": 2,
    "NZD": 2,
    "ZAR": 2,
    "JPY": 0,
    "KRW": 0,
    "HUF": 2,
    "KWD": 3,
    "BHD": 3,
}


class UnsupportedCurrency(DomainError):
    code = "unsupported-currency"
    status = 422
    title = "Unsupported currency"


def check_currency(code: str) -> str:
    if code not in CURRENCY_EXPONENTS:
        raise UnsupportedCurrency(f"{code!r} is not a supported ISO 4217 currency code")
    return code


class CurrencyMismatch(DomainError):
    code = "currency-mismatch"
    status = 422
    title = "Currency mismatch"


@dataclass(frozen=True, slots=True)
class Money:
    amount: int
    currency: str

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def times(self, quantity: int) -> Money:
        return Money(self.amount * quantity, self.currency)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(f"cannot combine {self.currency} and {other.currency}")


def percent_of(amount: int, basis_points: int) -> int:
    """``amount * basis_points / 10_000`` rounded half up, in integers only."""
    return (amount * basis_points + 5_000) // 10_000
