"""Champion selection and best-model selection on a real SQLite MLflow store."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from mlrig.naming import load_tags_registry
from mlrig.orchestration import (
    Champion,
    OrchestrationError,
    benchmark_latencies,
    select_best_model,
    select_champion,
)
from mlrig.tracking import MLflowSweepTracker

EXP = "exp-hpo-tiny"
A, B = "a" * 64, "b" * 64


class Store:
    """Trial, refit and benchmark runs written the way mlrig (or the reference) writes them."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.client = MlflowClient(tracking_uri=uri)
        self.exp_id = self.client.create_experiment(EXP)
        self.parents: dict[str, str] = {}

    def parent(self, study: str, **tags: str) -> str:
        if study not in self.parents:
            run = self.client.create_run(self.exp_id, tags={"code.stage": "hpo_sweep", **tags})
            self.client.set_terminated(run.info.run_id)
            self.parents[study] = run.info.run_id
        return self.parents[study]

    def trial(
        self,
        study: str,
        number: int,
        value: float,
        *,
        stage: str = "hpo_trial",
        refit: bool = True,
        **extra: str,
    ) -> str:
        trial_key = f"{study[:4]}{number:060d}"
        tags = {
            "code.stage": stage,
            "code.model": "tiny",
            "code.study_key_hash": study,
            "code.trial_key_hash": trial_key,
            "mlflow.parentRunId": self.parent(study),
            **(
                {"code.hpo.trial_number": str(number)}
                if stage == "hpo_trial"
                else {"trial_number": str(number)}
            ),
            **extra,
        }
        run = self.client.create_run(self.exp_id, tags=tags)
        self.client.log_metric(run.info.run_id, "macro-f1", value)
        self.client.log_param(run.info.run_id, "lr", "0.01")
        self.client.set_terminated(run.info.run_id)
        if refit:
            r = self.client.create_run(
                self.exp_id,
                tags={
                    "code.stage": "hpo_refit",
                    "code.study_key_hash": study,
                    "code.trial_key_hash": trial_key,
                },
            )
            self.client.set_terminated(r.info.run_id)
        return run.info.run_id

    def tracker(self) -> MLflowSweepTracker:
        return MLflowSweepTracker(EXP, tracking_uri=self.uri)


@pytest.fixture
def store(sqlite_tracking_uri: str) -> Store:
    return Store(sqlite_tracking_uri)


def _sel(**champion_selection: Any) -> dict[str, Any]:
    return {
        "objective": {"metric": "macro-f1", "direction": "maximize"},
        "champion_selection": champion_selection,
    }


def test_groups_by_study_and_picks_the_best_stable_group(store: Store) -> None:
    for n, v in enumerate([0.8, 0.7, 0.6]):
        store.trial(A, n, v)
    for n, v in enumerate([0.9, 0.5, 0.4]):
        store.trial(B, n, v)
    champ = select_champion(store.tracker(), "tiny", _sel(min_trials_per_group=3, top_k_for_stable_score=3))
    assert (champ.study_key_hash, champ.value, champ.trial_number) == (A, 0.8, 0)
    assert champ.stable_score == pytest.approx(0.7) and champ.params == {"lr": 0.01}
    # top_k 1: the single best value decides, so B wins.
    champ = select_champion(store.tracker(), "tiny", _sel(min_trials_per_group=1, top_k_for_stable_score=1))
    assert (champ.study_key_hash, champ.value) == (B, 0.9)


def test_min_trials_per_group_skips_small_studies(store: Store) -> None:
    store.trial(A, 0, 0.99)
    for n, v in enumerate([0.6, 0.5]):
        store.trial(B, n, v)
    champ = select_champion(store.tracker(), "tiny", _sel(min_trials_per_group=2))
    assert champ.study_key_hash == B
    with pytest.raises(OrchestrationError, match=r"no eligible study.*need 3 runs"):
        select_champion(store.tracker(), "tiny", _sel(min_trials_per_group=3))


def test_ties_go_to_the_lowest_trial_number(store: Store) -> None:
    for n in (4, 2, 7):
        store.trial(A, n, 0.5)
    assert select_champion(store.tracker(), "tiny", _sel()).trial_number == 2


def test_a_champion_without_refit_is_refused(store: Store) -> None:
    store.trial(A, 0, 0.9, refit=False)
    store.trial(A, 1, 0.1)
    with pytest.raises(OrchestrationError, match=r"trial 0 of 'tiny'.*no FINISHED refit run"):
        select_champion(store.tracker(), "tiny", _sel())


def test_reference_trial_runs_are_read(store: Store) -> None:
    # The reference tagged trial runs code.stage=hpo (like its sweep parents) with a trial_number tag.
    store.trial(A, 3, 0.7, stage="hpo")
    champ = select_champion(store.tracker(), "tiny", _sel())
    assert (champ.trial_number, champ.value) == (3, 0.7)


def test_require_artifact_available_reads_the_run_or_its_parent(store: Store) -> None:
    store.parent(A, **{"code.artifact.available": "false"})
    store.trial(A, 0, 0.9)
    store.trial(B, 0, 0.5)  # no tag anywhere: a legacy run, let through
    assert select_champion(store.tracker(), "tiny", _sel()).study_key_hash == A
    champ = select_champion(store.tracker(), "tiny", _sel(require_artifact_available=True))
    assert champ.study_key_hash == B
    with pytest.raises(OrchestrationError, match="tag or disk"):
        select_champion(
            store.tracker(), "tiny", _sel(require_artifact_available=True, artifact_check_source="x")
        )


def test_disk_source_keeps_runs_whose_output_exists(store: Store, tmp_path: Path) -> None:
    store.trial(A, 0, 0.9, **{"code.output_dir": str(tmp_path / "gone")})
    store.trial(B, 0, 0.5, **{"code.output_dir": str(tmp_path)})
    cfg = _sel(require_artifact_available=True, artifact_check_source="disk")
    assert select_champion(store.tracker(), "tiny", cfg).study_key_hash == B


def test_schema_versions_are_not_mixed_unless_allowed(store: Store) -> None:
    store.trial(A, 0, 0.9, **{"code.study.key_schema_version": "1.0"})
    store.trial(B, 0, 0.5)  # no version tag: 2.0, as the reference read it
    assert select_champion(store.tracker(), "tiny", _sel()).study_key_hash == B
    assert select_champion(store.tracker(), "tiny", _sel(prefer_schema_version="1.0")).study_key_hash == A
    assert select_champion(store.tracker(), "tiny", _sel(allow_mixed_schema_groups=True)).study_key_hash == A


def _champ(backbone: str, value: float, study: str = A) -> Champion:
    return Champion(
        backbone=backbone,
        experiment_name=f"exp-hpo-{backbone}",
        metric="macro-f1",
        direction="maximize",
        value=value,
        stable_score=value,
        study_key_hash=study,
        trial_key_hash=backbone[0] * 64,
        trial_run_id="r",
        refit_run_id="f",
        trial_number=0,
        params={},
        checkpoint_dir=None,
        n_trials_considered=1,
    )


def test_best_model_by_metric_then_by_latency(store: Store) -> None:
    champs = [_champ("tiny", 0.80), _champ("small", 0.82)]
    scoring = {"scoring": {"f1_weight": 0.3, "latency_weight": 0.7}}
    assert select_best_model(champs, scoring).backbone == "small"
    # With latencies (min-max normalised): small is 10x slower and 0.7 of the score goes to speed.
    best = select_best_model(champs, scoring, latencies_ms={"tiny": 1.0, "small": 10.0})
    assert best.backbone == "tiny" and set(best.scores) == {"tiny", "small"}
    lat = {"tiny": 1.0, "small": 10.0}
    double = {"f1_weight": 0.6, "latency_weight": 1.4}
    assert select_best_model(champs, {"scoring": double}, latencies_ms=lat).scores == pytest.approx(
        {"tiny": 0.7, "small": 0.3}
    )
    raw = {"scoring": {**double, "normalize_weights": False}}
    assert select_best_model(champs, raw, latencies_ms=lat).scores == pytest.approx(
        {"tiny": 1.4, "small": 0.6}
    )
    # A latency missing for one champion: the metric alone decides.
    assert select_best_model(champs, scoring, latencies_ms={"tiny": 1.0}).backbone == "small"


def test_latencies_come_from_the_benchmark_stage(store: Store) -> None:
    exp = store.client.create_experiment("exp-benchmark")
    tiny, small = _champ("tiny", 0.80), _champ("small", 0.82)
    for champ, latencies in ((tiny, [9.0, 1.0, 2.0]), (small, [10.0])):
        for ms in latencies:
            tags = {"code.study_key_hash": champ.study_key_hash, "code.trial_key_hash": champ.trial_key_hash}
            run = store.client.create_run(exp, tags=tags)
            store.client.log_metric(run.info.run_id, "latency_batch_1_ms", ms)
            store.client.set_terminated(run.info.run_id)
    tags = load_tags_registry()
    cfg: dict[str, Any] = {
        "benchmark": {"required_metrics": ["latency_batch_1_ms"], "latency_aggregation": "latest"}
    }
    assert benchmark_latencies(store.client, "exp", [tiny, small], cfg, tags=tags) == {
        "tiny": 2.0,
        "small": 10.0,
    }
    cfg["benchmark"]["latency_aggregation"] = "median"
    lat = benchmark_latencies(store.client, "exp", [tiny, small], cfg, tags=tags)
    assert lat == {"tiny": 2.0, "small": 10.0}
    cfg["benchmark"]["latency_aggregation"] = "mean"
    assert benchmark_latencies(store.client, "exp", [tiny, small], cfg, tags=tags)["tiny"] == pytest.approx(
        4.0
    )
    best = select_best_model(
        [tiny, small], {"scoring": {"f1_weight": 1, "latency_weight": 3}}, latencies_ms=lat
    )
    assert best.backbone == "tiny"
    assert benchmark_latencies(store.client, "other", [tiny], cfg, tags=tags) == {}
    # Only runs carrying every required metric count (none here carries throughput).
    cfg["benchmark"]["required_metrics"] = ["latency_batch_1_ms", "throughput_samples_per_sec"]
    assert benchmark_latencies(store.client, "exp", [tiny, small], cfg, tags=tags) == {}
    assert dataclasses.replace(best, scores={}) == tiny


@pytest.mark.parametrize(
    ("small", "rule", "winner"),
    [
        (0.50, {}, "small"),  # no thresholds: the scoring (here the metric alone) decides
        (0.50, {"accuracy_threshold": None, "min_accuracy_gain": None}, "small"),
        (0.50, {"accuracy_threshold": 0.015}, "small"),  # relative: 0.01 > 1.5% of 0.50
        (0.50, {"accuracy_threshold": 0.015, "use_relative_threshold": False}, "tiny"),  # absolute
        (0.50, {"min_accuracy_gain": 0.02}, "small"),  # small is 2.04% better than tiny: worth it
        (0.50, {"min_accuracy_gain": 0.03}, "tiny"),
        # The reference's defaults together: a 1% gap is close by the relative threshold (the reference's
        # conjunction of both never let the faster model win).
        (
            0.495,
            {"accuracy_threshold": 0.015, "use_relative_threshold": True, "min_accuracy_gain": 0.02},
            "tiny",
        ),
        (0.60, {"accuracy_threshold": 0.015, "min_accuracy_gain": 0.02}, "small"),
    ],
)
def test_hpo_selection_thresholds_prefer_the_faster_of_close_models(
    store: Store, small: float, rule: dict[str, Any], winner: str
) -> None:
    exp = store.client.create_experiment("exp-benchmark")
    tiny_c, small_c = _champ("tiny", 0.49), _champ("small", small)
    for champ, ms in ((tiny_c, 1.0), (small_c, 10.0)):
        tags = {"code.study_key_hash": champ.study_key_hash, "code.trial_key_hash": champ.trial_key_hash}
        run = store.client.create_run(exp, tags=tags)
        store.client.log_metric(run.info.run_id, "latency_batch_1_ms", ms)
        store.client.set_terminated(run.info.run_id)
    lat = benchmark_latencies(store.client, "exp", [tiny_c, small_c], {}, tags=load_tags_registry())
    assert lat == {"tiny": 1.0, "small": 10.0}
    metric_only = {"scoring": {"f1_weight": 1.0, "latency_weight": 0.0}}
    best = select_best_model([tiny_c, small_c], metric_only, latencies_ms=lat, hpo_selection=rule)
    assert best.backbone == winner
    # Without latencies the thresholds cannot apply: the most accurate model wins.
    assert select_best_model([tiny_c, small_c], metric_only, hpo_selection=rule).backbone == "small"


def test_hpo_selection_thresholds_honour_minimize_and_refuse_bad_values() -> None:
    lo, hi = dataclasses.replace(_champ("tiny", 0.51), direction="minimize"), _champ("small", 0.50)
    hi = dataclasses.replace(hi, direction="minimize")
    lat = {"tiny": 1.0, "small": 5.0}
    # small has the lower loss by 0.01 (2% of 0.50): close within 3%, not within 1%.
    assert (
        select_best_model([lo, hi], {}, latencies_ms=lat, hpo_selection={"accuracy_threshold": 0.03}).backbone
        == "tiny"
    )
    assert (
        select_best_model([lo, hi], {}, latencies_ms=lat, hpo_selection={"accuracy_threshold": 0.01}).backbone
        == "small"
    )
    with pytest.raises(OrchestrationError, match=r"selection\.accuracy_threshold must be a number"):
        select_best_model([lo, hi], {}, latencies_ms=lat, hpo_selection={"accuracy_threshold": "1%"})
