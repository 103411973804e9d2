"""``docs/configuration.md``, generated from :class:`Settings` so the reference cannot drift."""

from __future__ import annotations

from typing import Any

from pydantic.fields import FieldInfo

from omnicommerce.platform.config import Settings

HEADER = """# Configuration

Every setting is an environment variable (or a line of a `.env` file in the working directory).
Generated from `omnicommerce.platform.config.Settings` by `omni config-doc`; a test keeps it current.

| variable | default | meaning |
|---|---|---|
"""


def render() -> str:
    rows = [_row(name, field) for name, field in Settings.model_fields.items()]
    return HEADER + "".join(rows)


def _row(name: str, field: FieldInfo) -> str:
    meaning = (field.description or "").replace("|", "\\|")
    return f"| `OMNI_{name.upper()}` | {_default(field.default)} | {meaning} |\n"


def _default(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"
