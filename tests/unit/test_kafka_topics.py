"""Topics are created so that acks=all means what it says: min.insync.replicas where replication allows."""

import pytest

from recsys.config import load_settings
from recsys.kafka.topics import new_topics, project_topics, topic_config

pytestmark = pytest.mark.unit
BASE = load_settings("test", environ={})


def _with(replication: int, min_insync: int = 2):
    return BASE.model_copy(update={"kafka": BASE.kafka.model_copy(update={
        "replication_factor": replication, "min_insync_replicas": min_insync})})


@pytest.mark.parametrize(("replication", "min_insync", "expected"), [
    (1, 2, {}), (2, 2, {}),  # 2 of 2 would stop all writes while one broker restarts
    (3, 2, {"min.insync.replicas": "2"}), (5, 3, {"min.insync.replicas": "3"}),
    (3, 3, {"min.insync.replicas": "2"}),  # never all replicas: one broker may be down
])
def test_min_insync_replicas_is_set_where_replication_is_at_least_three(replication, min_insync, expected):
    assert topic_config(_with(replication, min_insync)) == expected


def test_every_project_topic_is_created_with_it():
    settings = _with(3)
    topics = new_topics(settings, project_topics(settings))
    assert [t.topic for t in topics] == project_topics(settings)
    assert all(t.config == {"min.insync.replicas": "2"} and t.replication_factor == 3 for t in topics)


def test_the_cluster_configuration_gets_it():
    assert load_settings("cluster", environ={}).kafka.replication_factor >= 3
    assert topic_config(load_settings("cluster", environ={})) == {"min.insync.replicas": "2"}
