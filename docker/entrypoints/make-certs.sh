#!/usr/bin/env bash
# A private CA and server certificates for the TLS of docker/compose.yaml, written to DIR:
#   ca.crt                 the CA every client trusts (kafka.security ssl.ca.location, redis.url ssl_ca_certs)
#   kafka.pem              the broker's key (unencrypted PKCS#8) + certificate chain: a PEM keystore for Kafka
#   redis.crt, redis.key   Redis' certificate and key
# Server names: the compose service name and localhost. The CA key is deleted once the certificates are signed.
# Idempotent: existing certificates are kept (delete DIR's files to issue new ones). Keys are world-readable
# because the Kafka and Redis images run as different users: this is for a demo cluster on one host only;
# elsewhere, mount certificates from your own CA or secret store.
#   make-certs.sh DIR [DAYS]
set -euo pipefail
dir="${1:?usage: make-certs.sh DIR [DAYS]}" days="${2:-825}"
if [ -s "$dir/ca.crt" ] && [ -s "$dir/kafka.pem" ] && [ -s "$dir/redis.crt" ] && [ -s "$dir/redis.key" ]; then
  echo "[certs] present in $dir (delete them to issue new ones)"
  exit 0
fi
mkdir -p "$dir"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
openssl req -x509 -newkey rsa:3072 -nodes -days "$days" -subj "/CN=recsys demo CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -keyout "$work/ca.key" -out "$work/ca.crt" 2>/dev/null
issue() {  # NAME: a key and a certificate for the host NAME (and localhost, for health checks)
  printf 'subjectAltName=DNS:%s,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' \
    "$1" >"$work/$1.ext"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$1" -keyout "$work/$1.key" -out "$work/$1.csr" 2>/dev/null
  openssl x509 -req -in "$work/$1.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial -days "$days" \
    -extfile "$work/$1.ext" -out "$work/$1.crt" 2>/dev/null
  openssl verify -CAfile "$work/ca.crt" "$work/$1.crt" >/dev/null
}
issue kafka
issue redis
cat "$work/kafka.key" "$work/kafka.crt" "$work/ca.crt" >"$work/kafka.pem"
install -m 0644 "$work/ca.crt" "$work/kafka.pem" "$work/redis.crt" "$work/redis.key" "$dir/"
echo "[certs] issued a CA and certificates for kafka and redis in $dir (valid $days days)"
