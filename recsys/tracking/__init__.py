"""Experiment tracking: every model version's stages, tuning trials, metrics and report in MLflow.

The Delta registry stays the source of truth that serving reads; MLflow is where data teams look. The
batch stages make one thin call each (`log_stage`); with `tracking.enabled` false it does nothing, and a
tracking store that fails only logs a warning: it never stops a model from being trained or published.
"""

from recsys.tracking.tracker import NoopTracker, Tracker, log_stage, tracker

__all__ = ["NoopTracker", "Tracker", "log_stage", "tracker"]
