"""Batch runs claim their version in the registry, an older run date never replaces a newer published
model by itself, only versions past the gate are activated, and ALS checkpoints do not outlive a fit."""

import os
import threading
from pathlib import Path

import pytest

from recsys.batch import registry, release, stages
from recsys.batch.als import als_checkpoints, fit_als
from recsys.contracts import model_version as mv
from recsys.contracts.tables import ITEM_FACTORS
from recsys.stores.registry_store import RejectedVersionError, activate_version

pytestmark = pytest.mark.spark


def _entry(version: str) -> registry.RegistryEntry:
    return registry.RegistryEntry(version, version.split(".")[0], {}, None, None, 1, 1, 1)


def _version(spark, settings, version: str, status: str) -> None:
    registry.record_candidate(settings, _entry(version))
    factors = spark.createDataFrame([("i1", [0.1, 0.2], 1.0)],
                                    "item_id STRING, factors ARRAY<FLOAT>, popularity DOUBLE")
    stages._write_version(factors, ITEM_FACTORS, settings, version)  # activation needs the version's factors
    if status == mv.PUBLISHED:
        registry.set_status(settings, version, mv.APPROVED)
        activate_version(settings, version)
    elif status != mv.CANDIDATE:
        registry.set_status(settings, version, status)


def test_two_runs_of_one_date_cannot_both_claim_it_and_each_attempt_gets_its_own_version(spark, own_lake):
    outcomes: list[str] = []

    def claim() -> None:
        try:
            outcomes.append(registry.claim_version(own_lake, "2026-11-02"))
        except registry.RunClaimedError as exc:
            outcomes.append(f"refused: {exc}")

    runs = [threading.Thread(target=claim) for _ in range(2)]  # two schedulers fire the same date at once
    for run in runs:
        run.start()
    for run in runs:
        run.join(300)
    claimed = [o for o in outcomes if not o.startswith("refused")]
    assert claimed == ["2026-11-02.1"] and "is being trained as 2026-11-02.1" in " ".join(outcomes)

    forced = registry.claim_version(own_lake, "2026-11-02", force=True)  # an operator knows .1 died
    assert forced == "2026-11-02.2"
    rows = {r["model_version"]: r for r in registry.list_versions(own_lake)}
    assert (rows["2026-11-02.1"]["status"], rows["2026-11-02.1"]["gate_reason"]) == (
        mv.REJECTED, "superseded by 2026-11-02.2")
    with pytest.raises(LookupError, match="still training"):
        stages.evaluate_stage(spark, own_lake, "2026-11-02")
    registry.release_claim(own_lake, forced)  # a failed attempt leaves nothing registered
    assert registry.claim_version(own_lake, "2026-11-02") == "2026-11-02.2"


def test_an_older_run_date_does_not_replace_a_newer_published_model_unless_activated(spark, own_lake):
    _version(spark, own_lake, "2026-11-05.1", mv.PUBLISHED)
    _version(spark, own_lake, "2026-11-04.1", mv.APPROVED)  # a late or re-run older date passed its gate
    result = release.publish_stage(own_lake, "2026-11-04")
    assert result.status == mv.APPROVED and "activate 2026-11-04.1 explicitly" in result.detail
    assert registry.current_version(own_lake) == "2026-11-05.1"
    activate_version(own_lake, "2026-11-04.1")  # the operator's explicit choice
    assert registry.current_version(own_lake) == "2026-11-04.1"


@pytest.mark.parametrize("status", [mv.CANDIDATE, mv.REJECTED])
def test_a_version_that_did_not_pass_the_gate_is_never_activated(spark, own_lake, status):
    _version(spark, own_lake, "2026-11-05.1", mv.PUBLISHED)
    _version(spark, own_lake, "2026-11-06.1", status)
    with pytest.raises(RejectedVersionError, match=r"cannot be activated|not approved or published"):
        activate_version(own_lake, "2026-11-06.1")
    assert registry.current_version(own_lake) == "2026-11-05.1"


def test_als_checkpoints_are_deleted_after_the_fit(spark, own_lake):
    interactions = spark.createDataFrame([(f"u{u}", f"i{(u + k) % 5}", 1.0 + k) for u in range(8) for k in range(3)],
                                         "user_id STRING, item_id STRING, strength DOUBLE")
    cfg = own_lake.als.model_copy(update={"rank": 2, "max_iter": 4, "checkpoint_interval": 1})
    with als_checkpoints(spark, own_lake) as path:
        fit_als(interactions, cfg).model.userFactors.count()
        written = [f for _, _, files in os.walk(path) for f in files]
    assert written, "ALS wrote checkpoints during the fit"
    assert not Path(path).exists()
