#!/bin/sh
# One-shot setup of MinIO for docker/compose.yaml (runs in the minio/mc image): the bucket of storage.delta_root,
# and the project's own user, limited to that bucket, whose keys every other service gets as AWS_ACCESS_KEY_ID /
# AWS_SECRET_ACCESS_KEY. Idempotent.
#   MINIO_ROOT_USER, MINIO_ROOT_PASSWORD   the server's administrator
#   S3_ACCESS_KEY, S3_SECRET_KEY           the project's user (secret: at least 8 characters)
#   S3_BUCKET (default recsys), S3_ENDPOINT (default http://minio:9000)
set -eu
: "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}" "${S3_ACCESS_KEY:?}" "${S3_SECRET_KEY:?}"
bucket="${S3_BUCKET:-recsys}"
tries=0
until mc alias set local "${S3_ENDPOINT:-http://minio:9000}" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null 2>&1; do
  tries=$((tries + 1))
  [ "$tries" -lt 60 ] || { echo "minio-init: MinIO did not answer" >&2; exit 1; }
  sleep 1
done
mc mb --ignore-existing "local/$bucket"
policy="$(mktemp)"
cat >"$policy" <<JSON
{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
   "Resource": ["arn:aws:s3:::$bucket"]},
  {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
                                 "s3:ListMultipartUploadParts"],
   "Resource": ["arn:aws:s3:::$bucket/*"]}]}
JSON
mc admin policy create local recsys-rw "$policy"
mc admin user add local "$S3_ACCESS_KEY" "$S3_SECRET_KEY"
mc admin policy attach local recsys-rw --user "$S3_ACCESS_KEY" 2>/dev/null || echo "minio-init: policy already attached"
rm -f "$policy"
echo "minio-init: bucket $bucket and its user ready"
