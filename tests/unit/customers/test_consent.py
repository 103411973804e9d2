"""Consent decisions (pure): opt-in, latest decision wins, a channel's own decision vs ``any``."""

from datetime import UTC, datetime

from omnicommerce.customers.domain import ConsentDecision, consent_given, latest_decisions


def _at(day: int) -> datetime:
    return datetime(2026, 1, day, tzinfo=UTC)


def test_no_decision_means_no_consent() -> None:
    assert not consent_given([], "marketing", "email")
    assert not consent_given([ConsentDecision("analytics", "any", True, _at(1))], "marketing", "email")


def test_latest_covering_decision_wins_and_ties_go_to_the_specific_channel() -> None:
    decisions = [
        ConsentDecision("marketing", "any", True, _at(1)),
        ConsentDecision("marketing", "sms", False, _at(2)),
    ]
    assert consent_given(decisions, "marketing", "email")
    assert not consent_given(decisions, "marketing", "sms")
    tie = [
        ConsentDecision("marketing", "any", True, _at(3)),
        ConsentDecision("marketing", "sms", False, _at(3)),
    ]
    assert not consent_given(tie, "marketing", "sms")


def test_latest_decisions_keeps_one_per_purpose_and_channel() -> None:
    decisions = [
        ConsentDecision("marketing", "email", True, _at(1)),
        ConsentDecision("marketing", "email", False, _at(5)),
        ConsentDecision("marketing", "email", True, _at(3)),
        ConsentDecision("personalization", "any", True, _at(2)),
    ]
    latest = latest_decisions(decisions)
    assert [(d.purpose, d.channel, d.granted) for d in latest] == [
        ("marketing", "email", False),
        ("personalization", "any", True),
    ]
