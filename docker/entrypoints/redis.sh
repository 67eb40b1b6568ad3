#!/usr/bin/env bash
# Redis of docker/compose.yaml (runs in the official redis image): TLS only, and one ACL user for the project,
# the default user switched off. Then the image's own entry point starts redis-server as the redis user.
#   REDIS_PASSWORD     required; kept only as its SHA-256 in the ACL file
#   REDIS_USER         default recsys            REDIS_KEY_PATTERN  default recsys:* (redis.key_prefix)
#   REDIS_TLS_PORT     default 6380              TLS_DIR            default /tls (make-certs.sh)
#   REDIS_MAXMEMORY    default 1gb               REDIS_MAXMEMORY_POLICY default volatile-lru (only keys with a TTL go)
# Clients connect with rediss://<user>:<password>@redis:<port>/0?ssl_ca_certs=<TLS_DIR>/ca.crt.
set -euo pipefail
: "${REDIS_PASSWORD:?set REDIS_PASSWORD}"
user="${REDIS_USER:-recsys}" tls="${TLS_DIR:-/tls}" acl="${REDIS_ACL_FILE:-/usr/local/etc/redis/users.acl}"
mkdir -p "$(dirname "$acl")"
hash="$(printf '%s' "$REDIS_PASSWORD" | sha256sum | cut -d' ' -f1)"
# All commands on the project's keys except the dangerous ones (FLUSHALL, KEYS, CONFIG, DEBUG, ...).
printf 'user default off\nuser %s on #%s ~%s resetchannels +@all -@dangerous\n' \
  "$user" "$hash" "${REDIS_KEY_PATTERN:-recsys:*}" >"$acl"
chmod 0600 "$acl"
chown redis:redis "$acl" 2>/dev/null || true
unset REDIS_PASSWORD
exec docker-entrypoint.sh redis-server --port 0 --tls-port "${REDIS_TLS_PORT:-6380}" \
  --tls-cert-file "$tls/redis.crt" --tls-key-file "$tls/redis.key" --tls-ca-cert-file "$tls/ca.crt" \
  --tls-auth-clients no --aclfile "$acl" --appendonly yes \
  --maxmemory "${REDIS_MAXMEMORY:-1gb}" --maxmemory-policy "${REDIS_MAXMEMORY_POLICY:-volatile-lru}" "$@"
