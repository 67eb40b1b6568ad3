"""CTR and conversion per variant from recommendations_served joined with the attributed events in bronze."""

import uuid
from datetime import UTC, date, datetime

import pytest

from recsys.batch.variant_outcomes import COLUMNS, variant_metrics
from recsys.contracts.served import CONTEXT_REC_ID, CONTEXT_VARIANT
from recsys.contracts.tables import EVENTS_BRONZE, RECOMMENDATIONS_SERVED
from recsys.spark.delta import ensure_table

pytestmark = pytest.mark.spark

OLD, RECENT = datetime(2026, 11, 20, 9, tzinfo=UTC), datetime(2026, 11, 27, 9, tzinfo=UTC)


def _append(spark, settings, spec, rows):
    ensure_table(spark, settings, spec)
    (spark.createDataFrame(rows, spec.ddl).write.format("delta").mode("append")
     .partitionBy(*spec.partition_by).save(settings.table_path(spec.name)))


def test_variant_metrics_count_only_events_on_items_their_list_showed_their_user(spark, own_lake):
    settings = own_lake
    tag = uuid.uuid4().hex[:8]
    exp = f"rep-{tag}"
    a, b, c = (f"{tag}-{u}" for u in "abc")
    r0, r1, r2, r3 = (f"{tag}-r{n}" for n in range(4))

    def served(rec, user, variant, items, ts):
        return (rec, user, exp, variant, "2026-11-19.1", items, ts, 0, 0, ts, ts.date())

    _append(spark, settings, RECOMMENDATIONS_SERVED, [
        served(r1, a, "control", ["i1", "i2", "i3"], RECENT),
        served(r1, a, "control", ["i1", "i2", "i3"], RECENT),  # delivered twice: counts once
        served(r2, b, "control", ["i1", "i2", "i2"], RECENT),  # a repeated item is shown once
        served(r3, c, "treat", ["i5", "i6"], RECENT),
        served(r0, a, "control", ["i9"], OLD),
    ])

    def event(n, user, item, event_type, rec):
        context = {CONTEXT_REC_ID: rec, CONTEXT_VARIANT: "forged"} if rec else None
        return (f"{tag}-e{n}", user, item, event_type, RECENT, None, 1, None, context, 0, n, RECENT, RECENT.date(),
                "events", RECENT)

    _append(spark, settings, EVENTS_BRONZE, [
        event(1, a, "i1", "click", r1),
        event(2, a, "i1", "click", r1),  # a repeat click of the same shown item counts once
        event(3, a, "i1", "purchase", r1),
        event(4, a, "i4", "click", r1),  # i4 was not in r1
        event(5, b, "i1", "click", r1),  # r1 was not served to b
        event(6, c, "i5", "click", r3),
        event(7, c, "i6", "view", r3),  # views are neither clicks nor purchases
        event(8, a, "i9", "click", r0),
        event(9, a, "i2", "click", None),  # not attributed
    ])

    recent = {r["variant"]: r.asDict() for r in variant_metrics(spark, settings, since=date(2026, 11, 25),
                                                                experiment=exp).collect()}
    assert recent == {
        "control": {"experiment": exp, "variant": "control", "served": 2, "users": 2, "items_shown": 5,
                    "clicks": 1, "purchases": 1, "ctr": 0.2, "conversion": 0.2},
        "treat": {"experiment": exp, "variant": "treat", "served": 1, "users": 1, "items_shown": 2,
                  "clicks": 1, "purchases": 0, "ctr": 0.5, "conversion": 0.0},
    }
    everything = {r["variant"]: r for r in variant_metrics(spark, settings, experiment=exp).collect()}
    assert (everything["control"]["served"], everything["control"]["items_shown"],
            everything["control"]["clicks"]) == (3, 6, 2)
    assert variant_metrics(spark, settings, experiment="nobody").columns == list(COLUMNS)
