"""The reference HPO search space (``choice``, ``uniform``, ``loguniform``, ``int``) as Optuna suggestions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna

from mlrig.orchestration.errors import OrchestrationError


def _num(name: str, spec: Mapping[str, Any], key: str) -> float:
    try:
        return float(spec[key])
    except (KeyError, TypeError, ValueError):
        raise OrchestrationError(
            f"search_space.{name}.{key} must be a number (got {spec.get(key)!r})"
        ) from None


def suggest_params(
    trial: optuna.Trial, search_space: Mapping[str, Any], *, exclude: tuple[str, ...] = ("backbone",)
) -> dict[str, Any]:
    """One value per search-space entry, suggested through ``trial`` (entries in ``exclude`` are skipped)."""
    params: dict[str, Any] = {}
    for name, spec in search_space.items():
        if name in exclude:
            continue
        if not isinstance(spec, Mapping):
            raise OrchestrationError(f"search_space.{name} must be a mapping with a 'type' (got {spec!r})")
        kind = spec.get("type")
        if kind == "choice":
            values = list(spec.get("values") or [])
            if not values:
                raise OrchestrationError(f"search_space.{name}.values must be a non-empty list")
            params[name] = trial.suggest_categorical(name, values)
        elif kind in ("uniform", "loguniform"):
            low, high = _num(name, spec, "min"), _num(name, spec, "max")
            params[name] = trial.suggest_float(name, low, high, log=kind == "loguniform")
        elif kind in ("int", "randint", "quniform"):
            low, high = int(_num(name, spec, "min")), int(_num(name, spec, "max"))
            params[name] = trial.suggest_int(name, low, high, step=int(spec.get("step", 1)))
        else:
            raise OrchestrationError(
                f"search_space.{name}.type {kind!r} is not one of choice, uniform, loguniform, int"
            )
    return params


def build_sampler(hpo_config: Mapping[str, Any], seed: int) -> optuna.samplers.BaseSampler:
    """``sampling.algorithm`` (``random`` or ``tpe``), seeded so a study samples the same way every time."""
    algorithm = str((hpo_config.get("sampling") or {}).get("algorithm", "random")).lower()
    if algorithm == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if algorithm in ("tpe", "bayesian"):
        return optuna.samplers.TPESampler(seed=seed)
    raise OrchestrationError(f"sampling.algorithm {algorithm!r} is not supported (random, tpe)")


def build_pruner(hpo_config: Mapping[str, Any]) -> optuna.pruners.BasePruner:
    """``early_termination``: ``bandit`` (slack factor, as Azure ML) , ``median``, or none."""
    policy_cfg = hpo_config.get("early_termination") or {}
    policy = str(policy_cfg.get("policy", "none")).lower()
    delay = int(policy_cfg.get("delay_evaluation", 0))
    interval = int(policy_cfg.get("evaluation_interval", 1))
    if policy == "median":
        return optuna.pruners.MedianPruner(n_warmup_steps=delay, interval_steps=interval)
    if policy == "bandit":
        slack = float(policy_cfg.get("slack_factor", 0.2))
        # Bandit: stop a trial whose value is worse than the best by more than the slack factor; a
        # percentile pruner at the top keeps the same spirit with Optuna's built-ins.
        return optuna.pruners.PercentilePruner(
            percentile=max(1.0, 100.0 * (1.0 - slack)) if slack < 1 else 1.0,
            n_warmup_steps=delay,
            interval_steps=interval,
            n_startup_trials=2,
        )
    if policy in ("none", "null", ""):
        return optuna.pruners.NopPruner()
    raise OrchestrationError(f"early_termination.policy {policy!r} is not supported (bandit, median, none)")
