#!/usr/bin/env bash
# Resolve JVM jars from Maven Central into the project (offline afterwards):
#   .local/spark-jars  Delta Lake + Spark Kafka source, minus what pyspark already ships
#   .local/kafka/libs  a Kafka broker (KRaft)
# Maven's cache stays inside the project (.local/m2).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
mvn_copy() {  # pom, output dir
  mvn -q -B -Dstyle.color=never -Dmaven.repo.local="$root/.local/m2" -f "$1" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$2"
}
if [ ! -f .local/spark-jars/.complete ]; then
  echo "[jars] resolving Spark connectors (Delta, Kafka source) from Maven Central"
  rm -rf .local/spark-jars
  mvn_copy docker/jars/spark-connectors.pom.xml "$root/.local/spark-jars"
  pyspark_jars="$(.venv/bin/python -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')"
  # Spark provides these libraries itself; a second, older copy on the classpath would clash.
  for jar in .local/spark-jars/*.jar; do
    base="$(basename "$jar" .jar | sed -E 's/-[0-9][0-9.]*(-[0-9]+)?$//')"
    if compgen -G "$pyspark_jars/${base}-[0-9]*.jar" >/dev/null; then rm "$jar"; fi
  done
  rm -f .local/spark-jars/shims-*.jar
  touch .local/spark-jars/.complete
fi
if [ ! -f .local/kafka/libs/.complete ]; then
  echo "[jars] resolving the Kafka broker from Maven Central"
  rm -rf .local/kafka/libs
  mvn_copy docker/jars/kafka-broker.pom.xml "$root/.local/kafka/libs"
  touch .local/kafka/libs/.complete
fi
echo "[jars] $(ls .local/spark-jars | wc -l) Spark connector jars, $(ls .local/kafka/libs | wc -l) Kafka broker jars"
