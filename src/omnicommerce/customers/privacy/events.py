"""Privacy events: ids and counts only — never the data a request exported or erased."""

from __future__ import annotations

from typing import Literal

from omnicommerce.platform.events import Event


class PrivacyDataExported(Event):
    """Everything about a person was exported (GDPR art. 15 / CCPA right to know)."""

    context = "customers"
    type: Literal["privacy.data_exported"] = "privacy.data_exported"
    version: Literal[1] = 1
    request_id: str
    customer_id: str
    requested_by: str


class PrivacyErasureCompleted(Event):
    """A person's personal data was erased or anonymised everywhere (GDPR art. 17 / CCPA
    deletion); ``erased`` counts the rows changed per context. Consumers holding copies
    (search indexes, a CRM) erase theirs for ``customer_ids``."""

    context = "customers"
    type: Literal["privacy.erasure_completed"] = "privacy.erasure_completed"
    version: Literal[1] = 1
    request_id: str
    customer_ids: list[str]
    erased: dict[str, int]
    suppressed_identifiers: int
    requested_by: str
