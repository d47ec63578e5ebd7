#!/usr/bin/env bash
# The test stack: the real docker-compose.yml with test/env/docker-compose.test.yml (local images) and
# test/env/test.env, under the compose project "helpdesk-dr-test".
#   stack.sh up     bring it up (copes with leftovers of an earlier run), wait until healthy, seed data once
#   stack.sh down   remove every container, volume and network it created — and nothing else
#   stack.sh create the empty stack definition (containers and volumes created, nothing started)
# A v2_ container or volume that belongs to another compose project (a real stack) makes it refuse to run.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PROJECT=${DR_TEST_PROJECT:-helpdesk-dr-test}
PREFIX=v2_
log() { printf '[stack %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
compose() {
  docker compose -p "$PROJECT" --project-directory "$ROOT" --env-file "$ROOT/test/env/test.env" \
    -f "$ROOT/docker-compose.yml" -f "$ROOT/test/env/docker-compose.test.yml" "$@"
}

guard() { # refuse to touch anything named v2_* that is not ours
  local bad=""
  while read -r name project; do
    [ -n "$name" ] && [ "$project" != "$PROJECT" ] && bad+=" container $name (project '${project:-none}')"
  done < <(docker ps -a --filter "name=^/${PREFIX}" --format '{{.Names}} {{.Label "com.docker.compose.project"}}')
  # copies dr made (side-by-side restores and drills: dr.restored-from; --force safety copies: dr.pre-restore-of)
  # belong to no stack: never touched, never a reason to refuse (an earlier run on this host may have left them)
  # volumes a test made itself (label dr.test.created) are the test stack's: `down` removes them
  while IFS='|' read -r name project copy pre ours; do
    [ -n "$name" ] && [ "$project" != "$PROJECT" ] && [ -z "$copy$pre$ours" ] && bad+=" volume $name (project '${project:-none}')"
  done < <(docker volume ls --filter "name=^${PREFIX}" --format '{{.Name}}|{{.Label "com.docker.compose.project"}}|{{.Label "dr.restored-from"}}|{{.Label "dr.pre-restore-of"}}|{{.Label "dr.test.created"}}')
  if [ -n "$bad" ]; then
    echo "stack.sh: refusing to run: these do not belong to the test stack ($PROJECT):$bad" >&2
    echo "stack.sh: the test stack never touches them; remove them yourself or run the tests on another host" >&2
    exit 1
  fi
}

up() {
  guard
  if ! docker network inspect npm_default >/dev/null 2>&1; then
    docker network create --label dr.test.created=true npm_default >/dev/null
  fi
  log "docker compose up (project $PROJECT)"
  compose up -d --wait --wait-timeout 180 --remove-orphans --quiet-pull 2>&1 | grep -v -E '^\s*(Container|Network|Volume) .* (Running|Started|Created|Healthy|Waiting|Starting|Creating)$' >&2 || true
  local unhealthy
  unhealthy=$(docker ps -a --filter "label=com.docker.compose.project=$PROJECT" --format '{{.Names}} {{.Status}}' | grep -v '(healthy)' || true)
  if [ -n "$unhealthy" ]; then echo "stack.sh: not healthy:"$'\n'"$unhealthy" >&2; exit 1; fi
  seed
  log "stack up and seeded"
}

seed() {
  if docker exec v2_glpi test -e /var/www/html/glpi/files/.dr-test-seeded; then return 0; fi
  log "seeding MariaDB, PostgreSQL, Redis and the volumes"
  docker exec -i v2_glpi_db sh -c 'MYSQL_PWD="$MARIADB_ROOT_PASSWORD" exec mariadb -uroot --default-character-set=utf8mb4 "$MARIADB_DATABASE"' <"$ROOT/test/env/seed/mariadb.sql"
  docker exec -i v2_chatwoot_db sh -c 'exec psql -X -q -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB"' <"$ROOT/test/env/seed/postgres.sql" >/dev/null
  bash "$ROOT/test/env/seed/redis.sh" | docker exec -i v2_chatwoot_redis sh -c 'REDISCLI_AUTH="$REDIS_PASSWORD" exec redis-cli --no-auth-warning --pipe' >/dev/null
  # Chatwoot's installation step (the stand-in's Sidekiq writes nothing before it)
  docker exec v2_chatwoot bundle exec rails db:chatwoot_prepare >/dev/null
  docker exec -i v2_chatwoot bash -s <"$ROOT/test/env/seed/chatwoot-files.sh"
  # GLPI's installer writes config/config_db.php (the stand-in writes tickets from then on); the credentials
  # reach it through the exec environment (-e NAME), never argv
  ( set -a; . "$ROOT/test/env/test.env"; set +a
    docker exec -i -e GLPI_DB_USER -e GLPI_DB_PASSWORD -e GLPI_DB_NAME v2_glpi bash -s <"$ROOT/test/env/seed/glpi-files.sh" )
}

create() { # the empty stack definition, as RESTORE.md brings it back: network + containers and volumes, not started
  guard
  docker network inspect npm_default >/dev/null 2>&1 || docker network create --label dr.test.created=true npm_default >/dev/null
  compose up --no-start 2>&1 | grep -v -E '^\s*(Container|Network|Volume) .* (Created|Creating)$' >&2 || true
}

down() {
  guard
  log "docker compose down (project $PROJECT)"
  compose down -v --remove-orphans --timeout 5 2>&1 | grep -v -E '^\s*(Container|Network|Volume) .* (Stopped|Removed|Stopping|Removing)$' >&2 || true
  # containers/volumes created by tests under the project label (e.g. restored volumes) go too
  docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" | xargs -r docker rm -f >/dev/null
  docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT" | xargs -r docker volume rm >/dev/null
  docker volume ls -q --filter "label=dr.test.created=true" | xargs -r docker volume rm >/dev/null 2>&1 || true
  if [ "$(docker network inspect -f '{{ index .Labels "dr.test.created" }}' npm_default 2>/dev/null)" = true ]; then
    docker network rm npm_default >/dev/null 2>&1 || true
  fi
  log "stack removed"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  seed) seed ;;
  create) create ;;
  *) echo "usage: $0 up|down|seed|create" >&2; exit 64 ;;
esac
