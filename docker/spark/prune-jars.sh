#!/usr/bin/env bash
# Build-time helper of the images: drop from DIR the jars whose library SPARK_JARS already ships (a second,
# older copy on the classpath clashes), and the Delta shims; the same rule as docker/local/fetch_jars.sh.
#   prune-jars.sh DIR SPARK_JARS
set -euo pipefail
dir="$1" spark_jars="$2"
[ -d "$dir" ] && [ -d "$spark_jars" ] || { echo "usage: $0 DIR SPARK_JARS" >&2; exit 2; }
for jar in "$dir"/*.jar; do
  base="$(basename "$jar" .jar | sed -E 's/-[0-9][0-9.]*(-[0-9]+)?$//')"
  if compgen -G "$spark_jars/${base}-[0-9]*.jar" >/dev/null; then rm "$jar"; fi
done
rm -f "$dir"/shims-*.jar
echo "[jars] $(ls "$dir" | wc -l) jars kept in $dir"
