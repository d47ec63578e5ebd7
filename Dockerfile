# helpdesk-dr sidecar image: `dr daemon` (scheduled backups, /metrics, /healthz, notifications).
#   docker build -t helpdesk-dr:0.1.0 .
# NODE_BASE: a Node 24 image on Debian bookworm (default node:24-bookworm-slim); the tests pass a locally
# built equivalent. INSTALL_TOOLS=0 skips apt-get when the base already has age, zstd and tini.
ARG NODE_BASE=node:24-bookworm-slim

# --- stage 1: production dependencies (reused from the context when it already has them) ---------------
FROM ${NODE_BASE} AS deps
WORKDIR /build
COPY package.json package-lock.json ./
COPY . /ctx/
RUN if [ -d /ctx/node_modules/commander ]; then mv /ctx/node_modules ./node_modules; \
    else npm ci --omit=dev --no-audit --no-fund --ignore-scripts; fi && rm -rf /ctx

# --- stage 2: runtime -------------------------------------------------------------------------------------
FROM ${NODE_BASE}
ARG INSTALL_TOOLS=1
RUN if [ "$INSTALL_TOOLS" = 1 ]; then apt-get update && apt-get install -y --no-install-recommends age zstd tini ca-certificates \
    && rm -rf /var/lib/apt/lists/*; fi && command -v age zstd tini >/dev/null
WORKDIR /app
COPY --from=deps /build/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY src ./src
ENV NODE_ENV=production DR_LOCAL_DIR=/backups DR_METRICS_PORT=9464 NODE_OPTIONS=--max-old-space-size=256
# Runs as root by default: the Docker socket it needs is root-equivalent anyway. To run as another user,
# give it the socket's group (compose: user + group_add) and a backup directory it owns (see README).
EXPOSE 9464
HEALTHCHECK --interval=60s --timeout=10s --start-period=30s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.DR_METRICS_PORT||9464)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
STOPSIGNAL SIGTERM
ENTRYPOINT ["tini", "--", "node", "/app/bin/dr"]
CMD ["daemon"]
