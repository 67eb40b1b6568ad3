import os
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor

import pytest

from recsys.config import PROJECT_ROOT, load_settings
from recsys.spark.blas import NATIVE_JVM_CLASSES, BlasReport
from recsys.spark.class_archive import JAVA_OPTIONS, class_path_key
from recsys.spark.conf import base_conf, driver_env, submit_args
from recsys.spark.package import build_package_zip

pytestmark = pytest.mark.unit


def test_submit_args_follow_configuration_not_local_mode(tmp_path):
    cluster = load_settings("cluster", environ={})
    args = submit_args(cluster)
    assert args[:2] == ["--master", "spark://spark-master:7077"]
    assert args[args.index("--packages") + 1].startswith("io.delta:delta-spark_4.2_2.13")
    assert "--jars" not in args  # executors on a cluster fetch connectors by coordinates
    assert "spark.pyspark.python=python3" in args
    assert "spark.hadoop.fs.s3a.path.style.access=true" in args


def test_every_session_gets_delta_and_utc():
    conf = base_conf(load_settings("test", environ={}))
    assert conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert conf["spark.sql.session.timeZone"] == "UTC"
    assert conf["spark.sql.adaptive.enabled"] == conf["spark.sql.adaptive.coalescePartitions.enabled"] == "true"
    assert conf["spark.sql.adaptive.advisoryPartitionSizeInBytes"] == "64m"
    assert conf["spark.buffer.pageSize"] == "4m"
    off = base_conf(load_settings("test", environ={"RECSYS__SPARK__ADAPTIVE": "false",
                                                   "RECSYS__SPARK__PAGE_SIZE": "16m"}))
    assert off["spark.sql.adaptive.enabled"] == "false"
    assert off["spark.buffer.pageSize"] == "16m"


def test_package_zip_holds_the_shared_package(tmp_path):
    names = zipfile.ZipFile(build_package_zip(tmp_path / "r.zip")).namelist()
    assert "recsys/contracts/events.py" in names and "recsys/speed/stream.py" in names
    assert not any(n.startswith("tests/") for n in names)


def test_package_zip_modules_import_from_their_bytecode(tmp_path):
    """zipimport never writes bytecode: the zip carries it, where zipimport looks (mod.pyc beside mod.py)."""
    archive = build_package_zip(tmp_path / "r.zip")
    assert "recsys/contracts/events.pyc" in zipfile.ZipFile(archive).namelist()
    code = "import recsys.contracts.events as m; print(m.__file__)"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(archive)},
                         cwd=tmp_path, capture_output=True, text=True, check=True).stdout.strip()
    assert out == f"{archive}/recsys/contracts/events.pyc"


def test_package_zips_built_at_once_each_land_whole(tmp_path):
    dest = tmp_path / "r.zip"
    with ThreadPoolExecutor(3) as pool:
        built = list(pool.map(lambda _: build_package_zip(dest), range(3)))
    assert built == [dest] * 3
    assert zipfile.ZipFile(dest).testzip() is None
    assert [p.name for p in tmp_path.iterdir()] == ["r.zip"]  # no temporary file left behind


def test_blas_threads_and_malloc_arenas_reach_executors_and_the_driver():
    settings = load_settings("test", environ={"RECSYS__SPARK__BLAS_THREADS": "3", "RECSYS__SPARK__MALLOC_ARENAS": "4"})
    conf = base_conf(settings)
    env = driver_env(settings)
    for name, value in [(n, "3") for n in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")] + \
            [("MALLOC_ARENA_MAX", "4")]:
        assert conf[f"spark.executorEnv.{name}"] == value
        assert env[name] == value
    assert env["RECSYS_ENV"] == "test"
    glibc_default = load_settings("test", environ={"RECSYS__SPARK__MALLOC_ARENAS": "0"})
    assert "MALLOC_ARENA_MAX" not in driver_env(glibc_default)
    assert "spark.executorEnv.MALLOC_ARENA_MAX" not in base_conf(glibc_default)


def test_blas_report_tells_native_from_java_fallback():
    native = BlasReport(*NATIVE_JVM_CLASSES, executor_blas=(NATIVE_JVM_CLASSES[0],),
                        executor_lapack=(NATIVE_JVM_CLASSES[1],), numpy=("openblas 0.3.30 (1 threads, x.so)",))
    assert native.jvm_native and "(native)" in native.line()
    # one executor on the Java fallback (a node without libopenblas) is enough to flag the run
    mixed = BlasReport(*NATIVE_JVM_CLASSES, executor_blas=(NATIVE_JVM_CLASSES[0], "dev.ludovic.netlib.blas.VectorBLAS"),
                       executor_lapack=(NATIVE_JVM_CLASSES[1],))
    assert not mixed.jvm_native
    assert "executors=JNIBLAS,VectorBLAS/JNILAPACK (JAVA FALLBACK)" in mixed.line()


def test_executors_resolve_relative_paths_against_the_project_root():
    """On a cluster executors import recsys from the --py-files zip; without RECSYS_HOME, PROJECT_ROOT (and so
    every relative storage path their delta-rs reads use) would point inside the zip."""
    conf = base_conf(load_settings("test", environ={}))
    assert conf["spark.executorEnv.RECSYS_HOME"] == str(PROJECT_ROOT)


def test_the_driver_maps_the_class_archive_only_once_it_is_built(tmp_path):
    archive = tmp_path / "driver.jsa"
    environ = {"RECSYS__SPARK__CLASS_ARCHIVE": str(archive), "RECSYS__SPARK__DRIVER_JAVA_OPTIONS": "-XX:+UseSerialGC",
               "RECSYS__SPARK__EXTRA_CONF": '{"spark.driver.extraJavaOptions": "-Dmine=1"}'}
    assert base_conf(load_settings("test", environ=environ))[JAVA_OPTIONS] == "-XX:+UseSerialGC -Dmine=1"
    archive.write_bytes(b"built")
    options = base_conf(load_settings("test", environ=environ))[JAVA_OPTIONS]
    # configured, then the operator's own (which win where they repeat one), then the archive
    assert options == f"-XX:+UseSerialGC -Dmine=1 -XX:SharedArchiveFile={archive}"
    off = base_conf(load_settings("test", environ={"RECSYS__SPARK__CLASS_ARCHIVE": "",
                                                   "RECSYS__SPARK__DRIVER_JAVA_OPTIONS": ""}))
    assert JAVA_OPTIONS not in off


def test_the_class_archive_key_changes_with_any_jar(tmp_path):
    (tmp_path / "jars").mkdir()
    (tmp_path / "jars" / "spark-core.jar").write_bytes(b"x" * 10)
    connector = tmp_path / "delta.jar"
    connector.write_bytes(b"y")
    key = class_path_key(str(tmp_path), [str(connector)])
    assert key == class_path_key(str(tmp_path), [str(connector)])
    connector.write_bytes(b"yy")  # another build of the same jar
    assert class_path_key(str(tmp_path), [str(connector)]) != key
    assert class_path_key(str(tmp_path), []) != key
