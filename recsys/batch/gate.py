"""The publish gate: a new model version goes live only when it is good enough, and says why."""

from __future__ import annotations

from dataclasses import dataclass

from recsys.config import GateConfig


@dataclass(frozen=True)
class GateDecision:
    publish: bool
    reason: str


def decide(candidate: float, current: float | None, cfg: GateConfig,
           baseline: tuple[str, float] | None = None) -> GateDecision:
    """Pass when the served ranking's NDCG clears the floor, beats the best single baseline by
    gate.baseline_margin (relative) and is not worse than the current model by more than max_regression.

    `candidate` and `baseline` are scored on the same validation window; `baseline` is (name, NDCG) of the
    strongest single signal or model, None when nothing was scored beside the candidate.
    """
    if candidate < cfg.min_ndcg:
        return GateDecision(False, f"ndcg@k {candidate:.4f} below the floor {cfg.min_ndcg:.4f}")
    if baseline is not None:
        name, best = baseline
        needed = best * (1 + cfg.baseline_margin)
        if candidate < needed:
            return GateDecision(False, f"served ndcg@k {candidate:.4f} does not beat the best single baseline "
                                       f"{name} ({best:.4f}) by the margin {cfg.baseline_margin:.0%} "
                                       f"(needs {needed:.4f})")
    if current is not None and candidate < current - cfg.max_regression:
        return GateDecision(False, f"ndcg@k {candidate:.4f} worse than current {current:.4f} "
                                   f"by more than {cfg.max_regression:.4f}")
    against = "" if baseline is None else f", best single baseline {baseline[0]} {baseline[1]:.4f} " \
                                          f"x (1 + {cfg.baseline_margin:.0%})"
    return GateDecision(True, f"ndcg@k {candidate:.4f} passes (floor {cfg.min_ndcg:.4f}{against}, "
                              f"current {current})")
