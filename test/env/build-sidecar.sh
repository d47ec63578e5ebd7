#!/usr/bin/env bash
# Builds the sidecar image for the tests as helpdesk-dr:test from the real Dockerfile, on the locally built
# Node base (helpdesk-dr-test/node:24, which already has age, zstd and tini: INSTALL_TOOLS=0). Production
# dependencies are installed on the host (npm ci --omit=dev) into a staging context, so the build needs no
# network. Cached: rebuilt only when the sources, the lock file or the Dockerfile change.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TAG=${1:-helpdesk-dr:test}
hash=$(cd "$ROOT" && { find src bin -type f | sort | xargs cat; cat package.json package-lock.json Dockerfile; } | sha256sum | cut -c1-16)
if [ "$(docker image inspect -f '{{ index .Config.Labels "dr.test.recipe" }}' "$TAG" 2>/dev/null || true)" = "$hash" ]; then exit 0; fi
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp -r "$ROOT/src" "$ROOT/bin" "$ROOT/package.json" "$ROOT/package-lock.json" "$ROOT/Dockerfile" "$ROOT/.dockerignore" "$ctx/"
sed -i '/^node_modules$/d' "$ctx/.dockerignore"
(cd "$ctx" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --silent >/dev/null)
DOCKER_BUILDKIT=0 docker build -q --build-arg NODE_BASE=helpdesk-dr-test/node:24 --build-arg INSTALL_TOOLS=0 \
  --label "dr.test.recipe=$hash" -t "$TAG" "$ctx" >/dev/null
echo "built $TAG ($(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1/1e6}'))" >&2
