#!/usr/bin/env bash
# Entry point of the recsys-spark image (docker/spark/Dockerfile); the working directory is the project.
#   spark.sh JOB [ARGS...]       python -m recsys.spark.submit spark_jobs/JOB.py ARGS  (stream, batch, load_data,
#                                activate_model, experiment_report); the master and all settings come from conf/
#   spark.sh master | worker     a standalone master / worker: SPARK_MASTER_HOST (the host name in spark.master),
#                                SPARK_MASTER_URL (default: spark.master), SPARK_WORKER_CORES, SPARK_WORKER_MEMORY
#   spark.sh driver | executor   Spark on Kubernetes: what spark-submit --master k8s://... starts in this image
#   spark.sh topics [ARGS...]    create the project's Kafka topics (python -m recsys.kafka.topics)
#   spark.sh COMMAND [ARGS...]   anything else runs as is (bash, python, spark-submit, ...)
set -euo pipefail
cd "${RECSYS_HOME:?RECSYS_HOME is set by the image}"

configured_master() { python -m recsys.config --get spark.master; }

# Spark on Kubernetes runs driver and executor pods with "driver ..." / "executor" as arguments of the image's
# entry point; this is the contract of Spark's own kubernetes/dockerfiles/spark/entrypoint.sh.
k8s_classpath() {
  local cp="${SPARK_HOME}/jars/*"
  [ -n "${SPARK_EXTRA_CLASSPATH:-}" ] && cp="$cp:$SPARK_EXTRA_CLASSPATH"
  [ -n "${HADOOP_CONF_DIR:-}" ] && cp="$HADOOP_CONF_DIR:$cp"
  printf '%s\n' "${SPARK_CONF_DIR:-$SPARK_HOME/conf}:$cp"
}

case "${1:-}" in
  "" | -h | --help | help)
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    ;;
  master)
    shift
    exec "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.master.Master \
      --host "${SPARK_MASTER_HOST:-$HOSTNAME}" --port "${SPARK_MASTER_PORT:-7077}" \
      --webui-port "${SPARK_MASTER_WEBUI_PORT:-8080}" "$@"
    ;;
  worker)
    shift
    mkdir -p "${SPARK_WORKER_DIR:=/tmp/spark-work}"
    exec "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.worker.Worker --work-dir "$SPARK_WORKER_DIR" \
      --webui-port "${SPARK_WORKER_WEBUI_PORT:-8081}" "$@" "${SPARK_MASTER_URL:-$(configured_master)}"
    ;;
  driver)
    shift
    exec "$SPARK_HOME/bin/spark-submit" --conf "spark.driver.bindAddress=${SPARK_DRIVER_BIND_ADDRESS:?}" \
      --deploy-mode client "$@"
    ;;
  executor)
    shift
    mapfile -t java_opts < <(env | grep '^SPARK_JAVA_OPT_' | sort -t_ -k4 -n | sed 's/[^=]*=\(.*\)/\1/g' || true)
    exec "$JAVA_HOME/bin/java" "${java_opts[@]}" -Xms"$SPARK_EXECUTOR_MEMORY" -Xmx"$SPARK_EXECUTOR_MEMORY" \
      -cp "$(k8s_classpath)" org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
      --driver-url "$SPARK_DRIVER_URL" --executor-id "$SPARK_EXECUTOR_ID" --cores "$SPARK_EXECUTOR_CORES" \
      --app-id "$SPARK_APPLICATION_ID" --hostname "$SPARK_EXECUTOR_POD_IP" \
      --resourceProfileId "$SPARK_RESOURCE_PROFILE_ID" --podName "$SPARK_EXECUTOR_POD_NAME"
    ;;
  topics)
    shift
    exec python -m recsys.kafka.topics "$@"
    ;;
  *)
    job="spark_jobs/${1%.py}.py"
    if [ -f "$job" ]; then
      shift
      # The executors connect back to this driver, by default at the name a reverse lookup of its address gives:
      # advertise the container's IP address instead, unless SPARK_LOCAL_HOSTNAME says otherwise.
      if [ -z "${SPARK_LOCAL_HOSTNAME:-}" ]; then
        ip="$(python -c 'import socket; print(socket.gethostbyname(socket.gethostname()))' 2>/dev/null || true)"
        case "$ip" in "" | 127.*) ;; *) export SPARK_LOCAL_HOSTNAME="$ip" ;; esac
      fi
      exec python -m recsys.spark.submit "$job" "$@"
    fi
    exec "$@"
    ;;
esac
