#!/usr/bin/env bash
# Makes sure the local PostgreSQL answers at 127.0.0.1:5432 (starts it if it is down).
set -euo pipefail
for i in $(seq 1 30); do
  if pg_isready -h 127.0.0.1 -p 5432 -q; then exit 0; fi
  if [ "$i" = 1 ] && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
  sleep 1
done
echo "PostgreSQL is not answering at 127.0.0.1:5432" >&2
exit 1
