"""Spark ALS and numpy run on a native BLAS (Debian's OpenBLAS through netlib), and every job says so."""

import logging

import pytest

from recsys.spark.blas import NATIVE_JVM_CLASSES, blas_report, log_blas

pytestmark = pytest.mark.spark


def test_driver_and_executors_load_native_blas_and_lapack(spark):
    report = blas_report(spark)
    assert (report.driver_blas, report.driver_lapack) == NATIVE_JVM_CLASSES
    assert report.executor_blas == (NATIVE_JVM_CLASSES[0],)
    assert report.executor_lapack == (NATIVE_JVM_CLASSES[1],)
    assert report.jvm_native
    assert any(entry.startswith("openblas ") for entry in report.numpy), report.numpy


def test_job_log_names_the_implementation(spark, caplog):
    with caplog.at_level(logging.INFO, logger="recsys.spark.blas"):
        log_blas(spark)
    lines = [r.getMessage() for r in caplog.records if r.name == "recsys.spark.blas"]
    assert len(lines) == 1 and caplog.records[-1].levelno == logging.INFO
    assert "driver=JNIBLAS/JNILAPACK executors=JNIBLAS/JNILAPACK (native)" in lines[0]
    assert "numpy=openblas" in lines[0]
