#!/usr/bin/env bash
# Install everything the project needs on this machine; idempotent, safe to re-run.
#   system: Java 17 + Maven (jars), redis-server, chromium + chromium-driver (browser test), OpenBLAS  (Debian, apt)
#   .venv:          the project (runtime pinned by requirements/lock.txt, dev and test tools by requirements/dev-lock.txt)
#   .venv-airflow:  Airflow + Spark provider (pinned by requirements/airflow-lock.txt)
#   .local/:        Spark connector jars and the Kafka broker, from Maven Central
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
step() { printf '\n==> %s\n' "$*"; }
started=$SECONDS

missing=()
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v chromium >/dev/null || missing+=(chromium)  # the demo page's browser test (tests/integration/test_demo_page.py)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
command -v wrk >/dev/null || missing+=(wrk)  # bench/serving_load.py and its smoke test (tests/integration/test_serving_bench.py)
# Native BLAS/LAPACK for Spark ALS: netlib dlopens libblas.so.3 and liblapack.so.3, which Debian's OpenBLAS
# provides through update-alternatives (else ALS runs on a Java fallback; each Spark job logs which loaded).
openblas_is_system_blas() {
  local lib
  for lib in libblas.so.3 liblapack.so.3; do
    lib="$(/sbin/ldconfig -p 2>/dev/null | awk -v l="$lib" '$1 == l {print $NF; exit}')"
    [[ -n "$lib" && "$(readlink -f "$lib")" == *openblas* ]] || return 1
  done
}
openblas_is_system_blas || missing+=(libopenblas0-pthread)
if [ ${#missing[@]} -gt 0 ]; then
  step "installing system packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
openblas_is_system_blas || echo "note: libblas.so.3/liblapack.so.3 are not OpenBLAS; select it with" \
  "update-alternatives --config libblas.so.3-$(uname -m)-linux-gnu (and liblapack.so.3-$(uname -m)-linux-gnu)"
# A packaged redis-server may start a system instance on 6379; the project runs its own.
if command -v systemctl >/dev/null && systemctl is-active --quiet redis-server 2>/dev/null; then
  echo "note: a system redis-server is running; stop it (systemctl stop redis-server) to free port 6379"
fi

PY="${PYTHON:-python3}"
"$PY" -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 needed"'
for venv in .venv .venv-airflow; do
  [ -x "$venv/bin/python" ] || { step "creating $venv"; "$PY" -m venv "$venv"; }
done
[ -x .venv/bin/uv ] || { step "installing uv (fast pinned installs)"; .venv/bin/pip install -q uv==0.13.8; }
step "syncing .venv with requirements/lock.txt and requirements/dev-lock.txt"
.venv/bin/uv pip sync -q --compile-bytecode -p .venv/bin/python requirements/lock.txt requirements/dev-lock.txt
.venv/bin/uv pip install -q -p .venv/bin/python --no-deps -e .
step "syncing .venv-airflow with requirements/airflow-lock.txt"
.venv/bin/uv pip sync -q --compile-bytecode -p .venv-airflow/bin/python requirements/airflow-lock.txt
# The project's own modules too. uv leaves bytecode to the first import, and an environment with
# PYTHONDONTWRITEBYTECODE (containers, CI images) never writes it: every process, each spark-submit and Python
# worker among them, would compile pandas, MLflow and the rest from source again (mlflow 3.4 s -> 1.4 s).
.venv/bin/python -m compileall -q -j 0 recsys api spark_jobs dags >/dev/null

.venv/bin/python -m recsys.spark.package >/dev/null  # zip for spark-submit --py-files
step "resolving jars from Maven Central"
bash docker/local/fetch_jars.sh
step "driver class archive (faster spark-submit starts; rebuilt only when the JDK or jars change)"
.venv/bin/python -m recsys.spark.class_archive_build \
  || echo "warning: no driver class archive; Spark jobs start without it (slower), see the error above"
printf '\nsetup done in %ss\n' "$((SECONDS - started))"
