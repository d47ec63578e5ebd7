#!/usr/bin/env bash
# Builds the local test images (no Docker Hub here): one Debian bookworm rootfs made by debootstrap and
# `docker import`ed as helpdesk-dr-test/base:<hash>, then five small images on top of it:
#   helpdesk-dr-test/mariadb:10.11   ~ mariadb:10.11   (MARIADB_*/MYSQL_* variables, healthcheck.sh, /var/lib/mysql)
#   helpdesk-dr-test/postgres:15     ~ postgres:15     (POSTGRES_* variables, PGDATA=/var/lib/postgresql/data, UTF-8)
#   helpdesk-dr-test/redis:7         ~ redis:7         (/data, runs as redis)
#   helpdesk-dr-test/glpi:standin    stand-in for diouxx/glpi (HTTP :80, writes into its volumes)
#   helpdesk-dr-test/chatwoot:standin stand-in for chatwoot/chatwoot (`bundle exec rails s` / `sidekiq`)
# Cached by tag: each image carries the hash of its recipe (label dr.test.recipe) and is rebuilt only when
# the recipe changes.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOOLS=${DR_TOOLS_DIR:-/opt/helpdesk-dr-tools}
REPO=helpdesk-dr-test
log() { printf '[images %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

hash_of() { (cd "$HERE" && cat "$@" | sha256sum | cut -c1-16); }
recipe_of() { docker image inspect -f '{{ index .Config.Labels "dr.test.recipe" }}' "$1" 2>/dev/null || true; }

BASE_HASH=$(hash_of build.sh base/packages)
BASE="$REPO/base:$BASE_HASH"

if [ -z "$(recipe_of "$BASE")" ]; then
  t0=$(date +%s)
  mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
  root="$TOOLS/rootfs-$BASE_HASH"
  cleanup() { umount "$root/proc" 2>/dev/null || true; }
  trap cleanup EXIT
  if [ ! -f "$root/.complete" ]; then
    rm -rf "$root"
    log "debootstrap bookworm (minbase) from $mirror"
    debootstrap --variant=minbase bookworm "$root" "$mirror" >"$TOOLS/debootstrap.log" 2>&1 ||
      { tail -30 "$TOOLS/debootstrap.log" >&2; exit 1; }
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"; chmod +x "$root/usr/sbin/policy-rc.d"
    mount -t proc proc "$root/proc"
    log "installing $(grep -v '^#' "$HERE/base/packages" | xargs)"
    chroot "$root" /usr/bin/env DEBIAN_FRONTEND=noninteractive bash -ec "
      apt-get update -qq
      apt-get install -y -qq --no-install-recommends $(grep -v '^#' "$HERE/base/packages" | xargs) >/dev/null
      localedef -i en_US -c -f UTF-8 -A /usr/share/locale/locale.alias en_US.UTF-8
      # package scripts made a default cluster/datadir; the entrypoints initialise their own on first start
      rm -rf /var/lib/postgresql/15 /etc/postgresql/15 /var/lib/mysql/* /var/lib/redis/*
      sed -ri 's/^(bind-address\s*=).*/\1 0.0.0.0/' /etc/mysql/mariadb.conf.d/50-server.cnf
      apt-get clean; rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* /usr/share/info/*
    " >"$TOOLS/chroot.log" 2>&1 || { tail -30 "$TOOLS/chroot.log" >&2; exit 1; }
    umount "$root/proc"
    touch "$root/.complete"
  fi
  log "docker import $BASE"
  tar -C "$root" --exclude=./.complete --exclude='./proc/*' --numeric-owner -cf - . |
    docker import --change "LABEL dr.test.recipe=$BASE_HASH" \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$BASE" >/dev/null
  rm -rf "$root"
  log "base image built in $(( $(date +%s) - t0 ))s"
fi

NODE_BIN=$(readlink -f "$(command -v node)")
for img in mariadb:10.11 postgres:15 redis:7 glpi:standin chatwoot:standin node:24; do
  dir=${img%%:*}
  h=$(hash_of build.sh base/packages $(cd "$HERE" && find "$dir" -type f | sort))
  if [ "$dir" = node ]; then h="$h-$(node --version)"; fi
  if [ "$(recipe_of "$REPO/$img")" != "$h" ]; then
    log "building $REPO/$img"
    ctx="$HERE/$dir"
    if [ "$dir" = node ]; then # the context carries the host's Node 24 binary
      ctx=$(mktemp -d) && cp "$HERE/node/Dockerfile" "$NODE_BIN" "$ctx/" && mv "$ctx/$(basename "$NODE_BIN")" "$ctx/node" 2>/dev/null || true
    fi
    DOCKER_BUILDKIT=0 docker build -q --build-arg "BASE=$BASE" --label "dr.test.recipe=$h" -t "$REPO/$img" "$ctx" >/dev/null
    if [ "$dir" = node ]; then rm -rf "$ctx"; fi
  fi
done
log "images ready: $(docker images --format '{{.Repository}}:{{.Tag}}' "$REPO/*" | grep -v base | xargs)"
