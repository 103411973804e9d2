"""Event documents: versioned, named facts that leave through the outbox.

Each context declares its events as subclasses with ``type: Literal["order.placed"]`` and
``version: Literal[1]``; ``docs/events.md`` is generated from :data:`REGISTRY`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from omnicommerce.platform import clock
from omnicommerce.platform.ids import new_id

REGISTRY: dict[str, type[Event]] = {}


class Event(BaseModel):
    model_config = ConfigDict(frozen=True)

    context: ClassVar[str] = "platform"
    type: str
    version: int
    id: str = Field(default_factory=lambda: new_id("evt"))
    occurred_at: datetime = Field(default_factory=clock.now)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        field = cls.model_fields.get("type")
        if field is not None and isinstance(field.default, str) and field.default:
            REGISTRY[field.default] = cls

    @property
    def subject(self) -> str:
        return f"omni.{self.context}.{self.type}"

    def payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"id", "type", "version", "occurred_at"})
