from pathlib import Path

from omnicommerce.api.configdoc import render
from omnicommerce.platform.config import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_configuration_doc_matches_the_settings() -> None:
    stale = "docs/configuration.md is stale: run `omni config-doc > docs/configuration.md`"
    assert DOC.read_text() == render(), stale


def test_every_setting_says_what_it_is_for() -> None:
    undocumented = [name for name, field in Settings.model_fields.items() if not field.description]
    assert undocumented == []
