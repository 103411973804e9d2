from pathlib import Path

from omnicommerce.api.eventdoc import load_all, render

DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"


def test_events_doc_matches_the_code() -> None:
    assert DOC.read_text() == render(), "docs/events.md is stale: run `omni events-doc > docs/events.md`"


def test_every_event_is_named_context_dot_fact_and_versioned() -> None:
    events = load_all()
    assert len(events) >= 10
    for name, cls in events.items():
        assert "." in name and name == name.lower(), name
        assert cls.model_fields["version"].default >= 1
