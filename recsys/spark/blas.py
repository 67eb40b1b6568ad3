"""Which BLAS each Spark job really uses: netlib's JVM implementation (ALS) and numpy's, in one log line.

Spark MLlib calls BLAS/LAPACK through dev.ludovic.netlib, which dlopens the system's libblas.so.3 and
liblapack.so.3 (Debian: libopenblas0-pthread, installed by `make setup`) and otherwise falls back to a pure
Java implementation several times slower. Nothing fails when the native library is missing, so every job
logs what loaded, on the driver and on the executors (which on a cluster are other JVMs on other hosts).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

NATIVE_JVM_CLASSES = ("dev.ludovic.netlib.blas.JNIBLAS", "dev.ludovic.netlib.lapack.JNILAPACK")
INSTALL_HINT = "install Debian's libopenblas0-pthread (make setup) so netlib finds libblas.so.3 and liblapack.so.3"


@dataclass(frozen=True)
class BlasReport:
    """Class names of netlib's BLAS and LAPACK on the driver and executors, and numpy's BLAS libraries."""

    driver_blas: str
    driver_lapack: str
    executor_blas: tuple[str, ...] = ()
    executor_lapack: tuple[str, ...] = ()
    numpy: tuple[str, ...] = field(default_factory=tuple)

    @property
    def jvm_native(self) -> bool:
        """True when every JVM (driver and executors) loaded the native BLAS and LAPACK."""
        names = {self.driver_blas, self.driver_lapack, *self.executor_blas, *self.executor_lapack}
        return names <= set(NATIVE_JVM_CLASSES)

    def line(self) -> str:
        return (f"BLAS: jvm driver={_short(self.driver_blas)}/{_short(self.driver_lapack)} "
                f"executors={','.join(map(_short, self.executor_blas)) or '?'}/"
                f"{','.join(map(_short, self.executor_lapack)) or '?'} "
                f"({'native' if self.jvm_native else 'JAVA FALLBACK'}); numpy={'; '.join(self.numpy) or 'none'}")


def _short(class_name: str) -> str:
    return class_name.rsplit(".", 1)[-1]


def _class_of(instance_repr: str) -> str:
    """`reflect()` returns the instance's toString, `dev.ludovic.netlib.blas.JNIBLAS@1a2b3c`."""
    return instance_repr.split("@", 1)[0]


def numpy_blas() -> tuple[str, ...]:
    """numpy's BLAS libraries as threadpoolctl sees them: implementation, version, threads and file."""
    from threadpoolctl import threadpool_info

    return tuple(f"{i.get('internal_api')} {i.get('version')} ({i.get('num_threads')} threads, {i.get('filepath')})"
                 for i in threadpool_info() if i.get("user_api") == "blas")


def blas_report(spark: SparkSession) -> BlasReport:
    """Ask the driver JVM (py4j) and every executor JVM (SQL reflect, one tiny job) which netlib classes load.

    In local mode the executors are the driver JVM: its answer is theirs, and no job runs (a first job costs
    a cold driver seconds of code generation)."""
    jvm = spark.sparkContext._jvm
    netlib = jvm.dev.ludovic.netlib
    driver_blas = netlib.blas.BLAS.getInstance().getClass().getName()
    driver_lapack = netlib.lapack.LAPACK.getInstance().getClass().getName()
    if spark.sparkContext.master.startswith("local"):
        return BlasReport(driver_blas, driver_lapack, (driver_blas,), (driver_lapack,), numpy_blas())
    slots = max(1, spark.sparkContext.defaultParallelism)
    rows = (spark.range(0, slots, 1, slots)
            .selectExpr("reflect('dev.ludovic.netlib.blas.BLAS', 'getInstance') AS blas",
                        "reflect('dev.ludovic.netlib.lapack.LAPACK', 'getInstance') AS lapack")
            .collect())  # one row per task, no shuffle
    return BlasReport(
        driver_blas=driver_blas,
        driver_lapack=driver_lapack,
        executor_blas=tuple(sorted({_class_of(r.blas) for r in rows})),
        executor_lapack=tuple(sorted({_class_of(r.lapack) for r in rows})),
        numpy=numpy_blas(),
    )


def log_blas(spark: SparkSession) -> BlasReport | None:
    """Log the report (a warning with the fix when a JVM runs the Java fallback); never fails the job."""
    try:
        report = blas_report(spark)
    except Exception as exc:  # a diagnostic must not stop a job
        log.warning("BLAS: could not determine the implementation: %s", exc)
        return None
    if report.jvm_native:
        log.info(report.line())
    else:
        log.warning("%s; %s", report.line(), INSTALL_HINT)
    return report
