#!/bin/bash
# Subset of the official mariadb image's healthcheck.sh: --connect, --innodb_initialized, --innodb_buffer_pool_loaded
# (plus --su-mysql and --defaults-file, accepted and honoured/ignored), using /var/lib/mysql/.my-healthcheck.cnf.
set -eo pipefail
cnf=/var/lib/mysql/.my-healthcheck.cnf
q() { mariadb --defaults-extra-file="$cnf" --protocol=tcp -h localhost -Nse "$1"; }
[ $# -gt 0 ] || set -- --connect
for arg in "$@"; do
  case "$arg" in
    --connect) q 'SELECT 1' >/dev/null ;;
    --innodb_initialized) [ "$(q "SELECT 1 FROM information_schema.ENGINES WHERE engine='InnoDB' AND support IN ('YES','DEFAULT','ENABLED')")" = 1 ] ;;
    --innodb_buffer_pool_loaded) q "SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_load_status'" | grep -q 'completed' ;;
    --defaults-file=*) cnf=${arg#*=} ;;
    --su-mysql|--su=*|--no-defaults|--defaults-extra-file=*) ;;
    *) echo "healthcheck.sh: unsupported option $arg" >&2; exit 1 ;;
  esac
done
