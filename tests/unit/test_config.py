from pathlib import Path

import pytest

from recsys.config import PROJECT_ROOT, ConfigError, load_settings

pytestmark = pytest.mark.unit


def _conf_dir(tmp_path: Path, env_yaml: str) -> Path:
    (tmp_path / "base.yaml").write_text((PROJECT_ROOT / "conf" / "base.yaml").read_text())
    (tmp_path / "staging.yaml").write_text(env_yaml)
    return tmp_path


def test_every_environment_file_loads():
    for env in ("local", "test", "cluster"):
        settings = load_settings(env, environ={})
        assert settings.env == env
    assert load_settings("cluster", environ={}).spark.master.startswith("spark://")


def test_unknown_key_in_env_file_names_file_and_key(tmp_path):
    conf = _conf_dir(tmp_path, "kafka:\n  bootstrap_server: x:1\n")
    with pytest.raises(ConfigError) as err:
        load_settings("staging", conf_dir=conf, environ={})
    assert "staging.yaml" in str(err.value) and "kafka.bootstrap_server" in str(err.value)


def test_mistyped_value_is_an_error_naming_the_key(tmp_path):
    conf = _conf_dir(tmp_path, "serving:\n  port: eighty\n")
    with pytest.raises(ConfigError, match=r"serving\.port"):
        load_settings("staging", conf_dir=conf, environ={})


def test_environment_variables_override_files():
    settings = load_settings("test", environ={"RECSYS__KAFKA__BOOTSTRAP_SERVERS": "broker:9093",
                                              "RECSYS__ALS__RANK": "64"})
    assert settings.kafka.bootstrap_servers == "broker:9093"
    assert settings.als.rank == 64


def test_unknown_environment_variable_key_is_an_error():
    with pytest.raises(ConfigError, match=r"redis\.ulr"):
        load_settings("test", environ={"RECSYS__REDIS__ULR": "redis://x"})


def test_missing_environment_file_is_an_error():
    with pytest.raises(ConfigError, match="nowhere"):
        load_settings("nowhere", environ={})


def test_paths_resolve_against_project_root_and_uris_stay():
    settings = load_settings("local", environ={"RECSYS__STORAGE__DELTA_ROOT": "s3a://bucket/lake"})
    assert settings.table_path("items") == "s3a://bucket/lake/items"
    local = load_settings("local", environ={})
    assert local.table_path("items") == str(PROJECT_ROOT / ".local" / "delta" / "items")
