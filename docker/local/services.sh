#!/usr/bin/env bash
# All local services: redis then kafka (stopped in reverse order).
# Usage: docker/local/services.sh {up|down|status}
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

case "${1:-}" in
  up) bash "$HERE/redis.sh" up && bash "$HERE/kafka.sh" up ;;
  down) rc=0; bash "$HERE/kafka.sh" down || rc=1; bash "$HERE/redis.sh" down || rc=1; exit $rc ;;
  status) rc=0; bash "$HERE/redis.sh" status || rc=1; bash "$HERE/kafka.sh" status || rc=1; exit $rc ;;
  *) echo "usage: $0 {up|down|status}" >&2; exit 2 ;;
esac
