"""The publish gate: a new model version goes live only when it is good enough."""

from __future__ import annotations

from dataclasses import dataclass

from recsys.config import GateConfig


@dataclass(frozen=True)
class GateDecision:
    publish: bool
    reason: str


def decide(candidate: float, current: float | None, cfg: GateConfig) -> GateDecision:
    """Pass when the metric clears the floor and is not worse than the current model by more than the margin."""
    if candidate < cfg.min_ndcg:
        return GateDecision(False, f"ndcg@k {candidate:.4f} below the floor {cfg.min_ndcg:.4f}")
    if current is not None and candidate < current - cfg.max_regression:
        return GateDecision(False, f"ndcg@k {candidate:.4f} worse than current {current:.4f} "
                                   f"by more than {cfg.max_regression:.4f}")
    return GateDecision(True, f"ndcg@k {candidate:.4f} passes (floor {cfg.min_ndcg:.4f}, current {current})")
