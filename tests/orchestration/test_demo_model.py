"""The demo's user code (numpy dataset, two backbones, int8 conversion, benchmark) and its default configs."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from mlrig.naming import compute_study_key_hash_v2
from mlrig.orchestration.configs import DEFAULT_CONFIG_DIR, load_experiment_config
from mlrig.orchestration.demo_data import macro_f1, make_dataset, make_test_set, score_probabilities
from mlrig.orchestration.demo_model import benchmark, convert, train
from mlrig.orchestration.errors import OrchestrationError
from mlrig.orchestration.requests import BenchmarkRequest, ConvertRequest, TrainRequest, TrialPruned
from tests.e2e.faulty_model import faulty
from tests.fixtures import REFERENCE_CONFIG_DIR

REFERENCE_CONFIG = REFERENCE_CONFIG_DIR


def _load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((DEFAULT_CONFIG_DIR / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def data_config() -> dict[str, Any]:
    return _load("data/demo.yaml")


@pytest.fixture(scope="module")
def train_config() -> dict[str, Any]:
    return _load("train.yaml")


@pytest.fixture(scope="module")
def split(data_config: dict[str, Any]) -> tuple[list[int], list[int]]:
    """A fixed 2/3 : 1/3 split of the training pool, like one K-fold fold."""
    _, y = make_dataset(data_config)
    order = np.random.default_rng(7).permutation(len(y))
    cut = len(y) * 2 // 3
    return sorted(order[:cut].tolist()), sorted(order[cut:].tolist())


def _request(
    tmp_path: Path,
    data_config: dict[str, Any],
    train_config: dict[str, Any],
    split: tuple[list[int], list[int]] | None,
    backbone: str = "small",
    **kw: Any,
) -> TrainRequest:
    return TrainRequest(
        backbone=backbone,
        params=kw.pop("params", {}),
        output_dir=tmp_path / backbone,
        seed=0,
        data_config=data_config,
        train_config=train_config,
        train_indices=split[0] if split else None,
        eval_indices=split[1] if split else None,
        **kw,
    )


_DIGEST = "import hashlib,sys,yaml;from mlrig.orchestration.demo_data import make_dataset as m;"


def test_dataset_is_deterministic_across_processes_and_read_only(data_config: dict[str, Any]) -> None:
    x, y = make_dataset(data_config)
    code = (
        _DIGEST
        + "x,y=m(yaml.safe_load(sys.stdin));print(hashlib.sha256(x.tobytes()+y.tobytes()).hexdigest())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=yaml.safe_dump(data_config),
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest()
    assert x.dtype == np.float32 and y.dtype == np.int64 and x.shape == (len(y), data_config["n_features"])
    assert not x.flags.writeable and not y.flags.writeable
    assert set(np.unique(y).tolist()) == set(range(data_config["n_classes"]))
    other_x, _ = make_dataset({**data_config, "seed": data_config["seed"] + 1})
    assert not np.array_equal(x, other_x)


def test_test_set_is_held_out_and_stratified(data_config: dict[str, Any]) -> None:
    x, y = make_dataset(data_config)
    tx, ty = make_test_set(data_config)
    assert len(y) + len(ty) == data_config["n_rows"]
    assert len(ty) == pytest.approx(
        (1 - data_config["splitting"]["train_test_ratio"]) * data_config["n_rows"], 3
    )
    pool_rows = {row.tobytes() for row in x}
    assert not any(row.tobytes() in pool_rows for row in tx)
    assert np.allclose(np.bincount(ty) / len(ty), np.bincount(y) / len(y), atol=0.01)


def test_bad_data_config_names_the_key(data_config: dict[str, Any]) -> None:
    with pytest.raises(OrchestrationError, match="label_mapping has 4 labels but n_classes is 3"):
        make_dataset({**data_config, "n_classes": 3})
    with pytest.raises(OrchestrationError, match="'n_rows'"):
        make_dataset({**data_config, "n_rows": "many"})


def test_macro_f1_matches_hand_computed_values() -> None:
    y_true = np.array([0, 0, 1, 1, 2])
    y_pred = np.array([0, 1, 1, 1, 0])
    # class 0: 2*1/(2+2)=0.5, class 1: 2*2/(2+3)=0.8, class 2: 0; class 3 absent from both is left out
    assert macro_f1(y_true, y_pred, 4) == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert macro_f1(y_true, y_true, 3) == 1.0
    assert macro_f1(np.array([], dtype=np.int64), np.array([], dtype=np.int64), 3) == 0.0


def test_score_probabilities() -> None:
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    scores = score_probabilities(probs, np.array([0, 1, 1]), 2)
    assert scores["accuracy"] == pytest.approx(2 / 3)
    assert scores["loss"] == pytest.approx(-(np.log(0.9) + np.log(0.8) + np.log(0.4)) / 3)
    assert scores["macro-f1"] == pytest.approx((2 / 3 + 2 / 3) / 2)


def test_warm_start_continues_from_the_selected_checkpoint(
    tmp_path: Path, data_config: dict[str, Any], train_config: dict[str, Any]
) -> None:
    source = train(_request(tmp_path, data_config, train_config, None, "small"))
    frozen = {"learning_rate": 0.0, "dropout": 0.0}  # lr 0: the loaded weights stay as they are
    one_epoch = {**train_config, "training": {**train_config["training"], "epochs": 1}}
    warm = TrainRequest(
        "small",
        frozen,
        tmp_path / "warm",
        1,
        data_config,
        one_epoch,
        init_checkpoint=tmp_path / "small" / "checkpoint",
    )
    assert train(warm) == pytest.approx(source)
    cold = train(TrainRequest("small", frozen, tmp_path / "cold", 1, data_config, one_epoch))
    assert cold["macro-f1"] < source["macro-f1"] - 0.2
    with pytest.raises(OrchestrationError, match="holds backbone 'small'"):
        train(
            TrainRequest(
                "tiny", {}, tmp_path / "x", 1, data_config, one_epoch, init_checkpoint=warm.init_checkpoint
            )
        )
    with pytest.raises(OrchestrationError, match=r"no model_int8\.npz / model\.npz"):
        train(TrainRequest("tiny", {}, tmp_path / "x", 1, data_config, one_epoch, init_checkpoint=tmp_path))


def test_training_beats_chance_small_beats_tiny_and_writes_outputs(
    tmp_path: Path,
    data_config: dict[str, Any],
    train_config: dict[str, Any],
    split: tuple[list[int], list[int]],
) -> None:
    scores = {}
    for backbone in ("tiny", "small"):
        metrics = train(_request(tmp_path, data_config, train_config, split, backbone))
        assert set(metrics) == {"macro-f1", "loss", "accuracy"}
        written = json.loads((tmp_path / backbone / "metrics.json").read_text(encoding="utf-8"))
        assert written == pytest.approx(metrics)
        with np.load(tmp_path / backbone / "checkpoint" / "model.npz") as ckpt:
            meta = json.loads(str(ckpt["meta"]))
            assert meta == {"backbone": backbone, "format": "float32", "n_classes": 4}
            assert ckpt["feature_mean"].shape == (data_config["n_features"],)
            assert ckpt["w0"].dtype == np.float32
        scores[backbone] = metrics["macro-f1"]
    assert scores["tiny"] > 1 / data_config["n_classes"] + 0.2
    assert scores["small"] >= scores["tiny"]
    again = train(_request(tmp_path, data_config, train_config, split, "small"))
    assert again["macro-f1"] == scores["small"]  # same seed, same result


def test_training_on_all_rows_says_it_evaluated_on_train(
    tmp_path: Path, data_config: dict[str, Any], train_config: dict[str, Any]
) -> None:
    metrics = train(_request(tmp_path, data_config, train_config, None, "tiny"))
    assert metrics["evaluated_on_train"] == 1.0
    assert (
        json.loads((tmp_path / "tiny" / "metrics.json").read_text(encoding="utf-8"))["evaluated_on_train"]
        == 1
    )


def test_report_is_called_per_epoch_and_prune_raises(
    tmp_path: Path,
    data_config: dict[str, Any],
    train_config: dict[str, Any],
    split: tuple[list[int], list[int]],
) -> None:
    calls: list[tuple[int, float]] = []

    def report(step: int, value: float) -> bool:
        calls.append((step, value))
        return step == 2

    with pytest.raises(TrialPruned, match="epoch 2"):
        train(_request(tmp_path, data_config, train_config, split, "small", report=report))
    assert [step for step, _ in calls] == [1, 2]
    assert all(0.0 < value <= 1.0 for _, value in calls)
    assert not (tmp_path / "small" / "checkpoint").exists()
    assert not (tmp_path / "small" / "metrics.json").exists()

    calls.clear()
    train(
        _request(
            tmp_path, data_config, train_config, split, "tiny", report=lambda s, v: bool(calls.append((s, v)))
        )
    )
    assert [step for step, _ in calls] == list(range(1, train_config["training"]["epochs"] + 1))


def test_failure_injection(
    tmp_path: Path,
    data_config: dict[str, Any],
    train_config: dict[str, Any],
    split: tuple[list[int], list[int]],
) -> None:
    """The faults are injected by a test wrapper around the demo's ``train``, never by the shipped model."""
    with pytest.raises(RuntimeError, match="simulated failure"):
        faulty(fail_always=True)(_request(tmp_path, data_config, train_config, split, "tiny"))
    failing = faulty(fail_trials=[1, 3])
    with pytest.raises(RuntimeError, match="trial 3"):
        failing(_request(tmp_path, data_config, train_config, split, "tiny", trial_number=3))
    ok = failing(_request(tmp_path, data_config, train_config, split, "tiny", trial_number=2))
    assert ok["macro-f1"] > 0


def test_bad_inputs_raise_clear_errors(
    tmp_path: Path,
    data_config: dict[str, Any],
    train_config: dict[str, Any],
    split: tuple[list[int], list[int]],
) -> None:
    with pytest.raises(OrchestrationError, match="unknown backbone 'huge'"):
        train(_request(tmp_path, data_config, train_config, split, "huge"))
    with pytest.raises(OrchestrationError, match="'learning_rate'"):
        train(_request(tmp_path, data_config, train_config, split, "tiny", params={"learning_rate": "fast"}))
    with pytest.raises(OrchestrationError, match="train_indices"):
        train(_request(tmp_path, data_config, train_config, ([10**6], [0]), "tiny"))


def test_convert_quantises_and_benchmark_scores_the_held_out_rows(
    tmp_path: Path, data_config: dict[str, Any], train_config: dict[str, Any]
) -> None:
    train(_request(tmp_path, data_config, train_config, None, "small"))
    conversion_config = _load("conversion.yaml")
    info = convert(
        ConvertRequest("small", tmp_path / "small" / "checkpoint", tmp_path / "conv", conversion_config)
    )
    model_path = Path(info["model_path"])
    assert model_path == tmp_path / "conv" / "model_int8.npz"
    assert info["size_bytes"] == model_path.stat().st_size
    assert info["original_size_bytes"] == (tmp_path / "small" / "checkpoint" / "model.npz").stat().st_size
    assert info["weights_compression_ratio"] == pytest.approx(4.0)
    assert info["compression_ratio"] > 2.0  # the rest of the file (biases, stats, zip) is not quantised
    assert info["smoke_test_passed"] is True
    with np.load(model_path) as q:
        assert q["w0"].dtype == np.int8 and q["w1"].dtype == np.int8

    bench_config = _load("benchmark.yaml")
    scores = {}
    for name, path in (("int8", model_path), ("float", tmp_path / "small" / "checkpoint")):
        out = tmp_path / f"bench-{name}"
        metrics = benchmark(BenchmarkRequest("small", path, out, data_config, bench_config))
        report = json.loads((out / "benchmark.json").read_text(encoding="utf-8"))
        assert report["metrics"] == pytest.approx(metrics)
        assert report["test_rows"] == len(make_test_set(data_config)[1])
        for size in bench_config["benchmarking"]["batch_sizes"]:
            entry = report[f"batch_{size}"]
            assert 0 < entry["median_ms"] <= entry["p95_ms"] <= entry["p99_ms"]
            assert metrics[f"latency_batch_{size}_ms"] == entry["mean_ms"]
        assert 0.0 < metrics["accuracy"] <= 1.0
        resolved = path if path.is_file() else path / "model.npz"
        assert metrics["model_size_bytes"] == resolved.stat().st_size
        scores[name] = metrics
    assert scores["int8"]["accuracy"] > 0.5
    assert abs(scores["int8"]["accuracy"] - scores["float"]["accuracy"]) <= 0.03
    assert abs(scores["int8"]["macro-f1"] - scores["float"]["macro-f1"]) <= 0.03


def test_convert_rejects_the_reference_onnx_config(
    tmp_path: Path, data_config: dict[str, Any], train_config: dict[str, Any]
) -> None:
    train(_request(tmp_path, data_config, train_config, None, "tiny"))
    reference = yaml.safe_load((REFERENCE_CONFIG / "conversion.yaml").read_text(encoding="utf-8"))
    with pytest.raises(OrchestrationError, match=r"target\.format must be 'npz', got 'onnx'"):
        convert(ConvertRequest("tiny", tmp_path / "tiny" / "checkpoint", tmp_path / "conv", reference))
    with pytest.raises(OrchestrationError, match="model file not found"):
        convert(ConvertRequest("tiny", tmp_path / "missing", tmp_path / "conv", {}))


def test_reference_train_config_trains(tmp_path: Path, data_config: dict[str, Any]) -> None:
    """The reference train.yaml (``learning_rate: 2e-5`` read as a string by PyYAML, batch 1) is usable."""
    reference = yaml.safe_load((REFERENCE_CONFIG / "train.yaml").read_text(encoding="utf-8"))
    assert isinstance(reference["training"]["learning_rate"], str)
    metrics = train(
        _request(tmp_path, data_config, reference, (list(range(60)), list(range(60, 90))), "tiny")
    )
    assert 0.0 <= metrics["macro-f1"] <= 1.0


def test_default_configs_load_and_hash() -> None:
    for path in sorted(DEFAULT_CONFIG_DIR.rglob("*.yaml")):
        assert isinstance(yaml.safe_load(path.read_text(encoding="utf-8")), dict), path
    experiment = load_experiment_config(DEFAULT_CONFIG_DIR, "demo")
    assert experiment.name == "mlrig_demo"
    assert experiment.backbones == ["tiny", "small"]
    hpo = experiment.hpo
    assert hpo["k_fold"]["n_splits"] == 3 and hpo["sampling"]["max_trials"] == 6
    assert (
        hpo["objective"]
        == experiment.selection["objective"]
        == {"metric": "macro-f1", "direction": "maximize"}
    )
    for spec in hpo["search_space"].values():
        if spec["type"] in ("uniform", "loguniform"):
            assert (
                isinstance(spec["min"], float)
                and isinstance(spec["max"], float)
                and spec["min"] < spec["max"]
            )
    assert experiment.selection["benchmark"]["required_metrics"] == ["latency_batch_1_ms"]

    hashes = {
        b: compute_study_key_hash_v2(experiment.data, hpo, experiment.train, b) for b in experiment.backbones
    }
    assert len(set(hashes.values())) == 2 and all(len(h) == 64 for h in hashes.values())
    assert hashes["tiny"] == compute_study_key_hash_v2(experiment.data, hpo, experiment.train, "tiny")
    bumped = {**experiment.data, "version": "v2"}
    assert compute_study_key_hash_v2(bumped, hpo, experiment.train, "tiny") != hashes["tiny"]
