#!/bin/bash
# Subset of the official mariadb image's entrypoint: same variables (MARIADB_* and MYSQL_* aliases, *_FILE),
# same datadir, same healthcheck user and /var/lib/mysql/.my-healthcheck.cnf, /docker-entrypoint-initdb.d.
set -eo pipefail
shopt -s nullglob

file_env() { # file_env VAR [default]: VAR or VAR_FILE
  local var=$1 fvar="${1}_FILE" def=${2:-}
  if [ -n "${!var:-}" ] && [ -n "${!fvar:-}" ]; then echo "error: both $var and $fvar are set" >&2; exit 1; fi
  local val=$def
  if [ -n "${!var:-}" ]; then val=${!var}; elif [ -n "${!fvar:-}" ]; then val=$(<"${!fvar}"); fi
  export "$var"="$val"; unset "$fvar"
}
alias_env() { # MARIADB_X wins over MYSQL_X
  local m="MARIADB_$1" y="MYSQL_$1"
  file_env "$m"; file_env "$y"
  [ -n "${!m}" ] || export "$m"="${!y}"
}

if [ "${1:0:1}" = '-' ]; then set -- mariadbd "$@"; fi

if [ "$1" = mariadbd ] || [ "$1" = mysqld ]; then
  DATADIR=/var/lib/mysql
  if [ "$(id -u)" = 0 ]; then
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld "$DATADIR"
    exec setpriv --reuid=mysql --regid=mysql --init-groups "${BASH_SOURCE[0]}" "$@"
  fi
  for v in ROOT_PASSWORD ALLOW_EMPTY_ROOT_PASSWORD RANDOM_ROOT_PASSWORD DATABASE USER PASSWORD ROOT_HOST; do alias_env "$v"; done
  if [ ! -d "$DATADIR/mysql" ]; then
    if [ -z "$MARIADB_ROOT_PASSWORD" ] && [ -z "$MARIADB_ALLOW_EMPTY_ROOT_PASSWORD" ] && [ -z "$MARIADB_RANDOM_ROOT_PASSWORD" ]; then
      echo >&2 "error: Database is uninitialized and password option is not specified"
      echo >&2 "  You need to specify one of MARIADB_ROOT_PASSWORD, MARIADB_ALLOW_EMPTY_ROOT_PASSWORD and MARIADB_RANDOM_ROOT_PASSWORD"
      exit 1
    fi
    echo "[entrypoint] initializing database in $DATADIR"
    mariadb-install-db --datadir="$DATADIR" --skip-test-db --auth-root-authentication-method=normal \
      --skip-name-resolve --default-time-zone=SYSTEM >/dev/null
    "$@" --skip-networking --default-time-zone=SYSTEM --socket=/run/mysqld/mysqld.sock --wsrep_on=OFF &
    pid=$!
    for _ in $(seq 60); do mariadb-admin --socket=/run/mysqld/mysqld.sock ping >/dev/null 2>&1 && break; sleep 0.5; done
    if [ -n "$MARIADB_RANDOM_ROOT_PASSWORD" ]; then
      MARIADB_ROOT_PASSWORD=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
      echo "GENERATED ROOT PASSWORD: $MARIADB_ROOT_PASSWORD"
    fi
    sq() { printf '%s' "$1" | sed "s/\\\\/\\\\\\\\/g; s/'/\\\\'/g"; }
    hc_pw=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
    root_host=${MARIADB_ROOT_HOST:-%}
    {
      echo "SET @@SESSION.SQL_LOG_BIN=0;"
      echo "DELETE FROM mysql.user WHERE user NOT IN ('mysql.sys', 'mariadb.sys', 'root') OR host NOT IN ('localhost');"
      echo "ALTER USER 'root'@'localhost' IDENTIFIED BY '$(sq "$MARIADB_ROOT_PASSWORD")';"
      if [ "$root_host" != localhost ]; then
        echo "CREATE USER 'root'@'$root_host' IDENTIFIED BY '$(sq "$MARIADB_ROOT_PASSWORD")';"
        echo "GRANT ALL ON *.* TO 'root'@'$root_host' WITH GRANT OPTION;"
      fi
      for h in 127.0.0.1 ::1 localhost; do
        echo "CREATE USER 'healthcheck'@'$h' IDENTIFIED BY '$hc_pw';"
      done
      if [ -n "$MARIADB_DATABASE" ]; then
        echo "CREATE DATABASE IF NOT EXISTS \`$MARIADB_DATABASE\`;"
      fi
      if [ -n "$MARIADB_USER" ] && [ -n "$MARIADB_PASSWORD" ]; then
        echo "CREATE USER '$MARIADB_USER'@'%' IDENTIFIED BY '$(sq "$MARIADB_PASSWORD")';"
        [ -n "$MARIADB_DATABASE" ] && echo "GRANT ALL ON \`$(printf '%s' "$MARIADB_DATABASE" | sed 's/_/\\_/g')\`.* TO '$MARIADB_USER'@'%';"
      fi
      echo "FLUSH PRIVILEGES;"
    } | mariadb --socket=/run/mysqld/mysqld.sock -uroot --binary-mode
    printf '[mariadb-client]\nport=3306\nsocket=/run/mysqld/mysqld.sock\nuser=healthcheck\npassword=%s\n' "$hc_pw" >"$DATADIR/.my-healthcheck.cnf"
    chmod 0600 "$DATADIR/.my-healthcheck.cnf"
    for f in /docker-entrypoint-initdb.d/*; do
      case "$f" in
        *.sh) echo "[entrypoint] running $f"; . "$f" ;;
        *.sql) echo "[entrypoint] running $f"; MYSQL_PWD=$MARIADB_ROOT_PASSWORD mariadb --socket=/run/mysqld/mysqld.sock -uroot "${MARIADB_DATABASE:+--database=$MARIADB_DATABASE}" <"$f" ;;
        *.sql.gz) echo "[entrypoint] running $f"; gunzip -c "$f" | MYSQL_PWD=$MARIADB_ROOT_PASSWORD mariadb --socket=/run/mysqld/mysqld.sock -uroot "${MARIADB_DATABASE:+--database=$MARIADB_DATABASE}" ;;
        *.sql.zst) echo "[entrypoint] running $f"; zstd -dc "$f" | MYSQL_PWD=$MARIADB_ROOT_PASSWORD mariadb --socket=/run/mysqld/mysqld.sock -uroot "${MARIADB_DATABASE:+--database=$MARIADB_DATABASE}" ;;
      esac
    done
    kill "$pid"; wait "$pid" || true
    echo "[entrypoint] MariaDB init process done. Ready for start up."
  fi
fi
exec "$@"
