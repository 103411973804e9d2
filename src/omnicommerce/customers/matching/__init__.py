"""Probabilistic person matching (Fellegi-Sunter), pure Python: no SQL, no web framework.

    matcher = Matcher()                       # MatcherConfig() for thresholds and options
    pairs = matcher.match(records)            # dedupe one list (fits itself first)
    pairs = matcher.fit(new, known).match(new, known)   # link two lists, one-to-one
    for pair in pairs:
        matcher.decide(pair)                  # "merge" | "review" | "distinct"

See docs/matching.md for the model, blocking rules, levels and thresholds.
"""

from omnicommerce.customers.matching.matcher import Matcher, MatcherConfig
from omnicommerce.customers.matching.model import ComparisonParameters, FittedModel
from omnicommerce.customers.matching.records import PERSON_FIELDS, Decision, MatchPair, PersonRecord

__all__ = [
    "PERSON_FIELDS",
    "ComparisonParameters",
    "Decision",
    "FittedModel",
    "MatchPair",
    "Matcher",
    "MatcherConfig",
    "PersonRecord",
]
