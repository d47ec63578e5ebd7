#!/bin/bash
# Stand-in for chatwoot's docker/entrypoints/rails.sh (which waits for Postgres, then execs the command).
set -e
rm -f /app/tmp/pids/server.pid
exec "$@"
