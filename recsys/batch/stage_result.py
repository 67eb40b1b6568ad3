"""What every batch stage returns, and how a stage finds the model version of its run date (a light module:
the stages that start no Spark session import it)."""

from __future__ import annotations

from dataclasses import dataclass

from recsys.batch import registry
from recsys.config import Settings
from recsys.contracts import model_version as mv


@dataclass(frozen=True)
class StageResult:
    stage: str
    model_version: str
    status: str
    detail: str


def entry_for(settings: Settings, run_date: str, stage: str) -> dict:
    """The registry row of the run date's newest version, which `stage` works on; LookupError while there is
    none or it is still training (the train stage has to run, or finish, first)."""
    entry = registry.latest_for_run_date(settings, run_date)
    if entry is None:
        raise LookupError(f"{stage}: no model version for run date {run_date}; run the train stage first")
    if entry["status"] == mv.TRAINING:
        raise LookupError(f"{stage}: {entry['model_version']} is still training (or its run died); run the "
                          "train stage first")
    return entry
