import numpy as np
import pytest

from omnicommerce.customers.matching import Matcher
from omnicommerce.customers.matching.model import FittedModel
from tests.unit.customers.matching.synthetic import population


def fitted() -> FittedModel:
    return Matcher().fit(population().records).model


def test_em_converges_and_agreement_is_likelier_for_matches() -> None:
    model = fitted()
    assert model.converged
    assert 0 < model.prior < 0.5
    assert {s.rule for s in model.sessions} >= {"email", "phone", "postcode", "date_of_birth"}
    for params in model.comparisons:
        if params.name in ("national_id", "address_2"):  # no data: never estimated
            continue
        assert params.m[0] > params.u[0], params.name  # exact agreement
        assert params.m[-1] < params.u[-1], params.name  # flat disagreement


def test_a_session_never_estimates_what_its_rule_blocks_on() -> None:
    sessions = {s.rule: s for s in fitted().sessions}
    assert "email" not in sessions["email"].estimated
    assert "locality" not in sessions["postcode"].estimated
    assert {"given_name", "locality"}.isdisjoint(sessions["given_name_suburb"].estimated)
    assert "surname" in sessions["postcode"].estimated


def test_match_share_among_candidates_is_close_to_the_planted_one() -> None:
    model = fitted()
    planted = len(population().duplicates)
    assert 0.5 * planted <= model.prior * model.candidate_pairs <= 1.5 * planted


def test_weights_add_up_per_level_and_missing_weighs_nothing() -> None:
    model = fitted()
    levels = np.full((1, len(model.comparisons)), -1, dtype=np.int8)
    prior_only = float(model.match_weights(levels)[0])
    assert prior_only == pytest.approx(np.log2(model.prior / (1 - model.prior)))
    levels[0, 0] = 0  # given name exact
    assert float(model.match_weights(levels)[0]) == pytest.approx(
        prior_only + model.comparisons[0].weights()["exact"]
    )
