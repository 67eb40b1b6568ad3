"""The sequence model's lines in a version's HTML report, from what the sequence stage recorded (params)."""

from __future__ import annotations

SEQUENCE_PARAM = "sequence"  # the registry params key the sequence stage writes


def sequence_rows(params: dict) -> dict[str, dict[str, float]]:
    """Report rows "next-item <model>" (HR, NDCG, MRR of the held-out sessions' last items); none without a run."""
    recorded = (params or {}).get(SEQUENCE_PARAM) or {}
    return {f"next-item {model}": {key: value for key, value in metrics.items() if key != "cases"}
            for model, metrics in (recorded.get("test") or {}).items()}


def sequence_summary(params: dict) -> str:
    """One line: used or not and why, with the session counts and training time."""
    recorded = (params or {}).get(SEQUENCE_PARAM)
    if not recorded:
        return "not trained for this version"
    if not recorded.get("enabled", True):
        return "off (sequence.enabled false)"
    stats = recorded.get("stats")
    if not stats:
        return recorded.get("reason", "")
    return (f"{recorded['reason']}; sessions train/validation/test {stats.get('sessions_train')}/"
            f"{stats.get('sessions_validation')}/{stats.get('sessions_test')}, {stats.get('items')} items, "
            f"trained {stats.get('epochs')} epochs in {stats.get('train_s')} s")
