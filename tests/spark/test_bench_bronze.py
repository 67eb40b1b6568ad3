"""bench/bronze_batch.py at its smoke size, on the run's shared SparkSession: both modes write every record once."""

import sys

import pytest

from recsys.config import PROJECT_ROOT
from recsys.contracts.tables import EVENTS_BRONZE, RECOMMENDATIONS_SERVED
from recsys.spark.delta import read_table

pytestmark = pytest.mark.spark


@pytest.mark.parametrize("watermarks", [True, False])
def test_the_bronze_bench_times_each_batch_and_writes_every_record_once(spark, own_lake, monkeypatch, watermarks):
    monkeypatch.syspath_prepend(str(PROJECT_ROOT / "bench"))
    sys.modules.pop("bronze_batch", None)
    import bronze_batch

    costs = bronze_batch.run(spark, own_lake, events=10, batches=2, watermarks=watermarks)
    assert len(costs) == 2 and all(wall > 0 and cpu > 0 for wall, cpu in costs)
    assert read_table(spark, own_lake, EVENTS_BRONZE).select("kafka_offset").distinct().count() == 20
    assert read_table(spark, own_lake, RECOMMENDATIONS_SERVED).count() == 20 * bronze_batch.SERVED_PER_EVENT
