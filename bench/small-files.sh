#!/usr/bin/env bash
# Generates the small-files volume of the benchmark: Docker volume benchsmall_data with FILES (default
# 300,000) text files of 60–200 bytes in 1,000 folders, like a helpdesk's ticket notes and thumbnails
# (cached: regenerated only when FILES changes). Names and contents are deterministic. A stopped holder
# container (benchsmall_holder) gives dr an image to read the volume with.
set -euo pipefail
FILES=${1:-300000}
VOL=benchsmall_data
if [ "$(docker volume inspect -f '{{ index .Labels "bench.files" }}' "$VOL" 2>/dev/null || true)" = "$FILES" ]; then
  docker inspect benchsmall_holder >/dev/null 2>&1 || docker create --name benchsmall_holder --network none -v "$VOL:/d" helpdesk-dr-test/glpi:standin >/dev/null
  exit 0
fi
docker rm -f benchsmall_holder >/dev/null 2>&1 || true
docker volume rm -f "$VOL" >/dev/null 2>&1 || true
docker volume create --label "bench.files=$FILES" "$VOL" >/dev/null
docker run --rm --network none -v "$VOL:/d" --entrypoint bash helpdesk-dr-test/glpi:standin -c "
  set -e
  awk -v n=$FILES 'BEGIN { srand(5); for (i = 0; i < n; i++) { d = sprintf(\"/d/notes/%03d\", i % 1000); if (i < 1000) system(\"mkdir -p \" d);
    f = sprintf(\"%s/n%07d.txt\", d, i); printf(\"ticket %d followup %d: %s\\n\", i, int(rand() * 100000), substr(\"the printer on floor three still jams after the toner change, please send someone before noon\", 1, 40 + int(rand() * 120))) > f; close(f) } }'
"
docker create --name benchsmall_holder --network none -v "$VOL:/d" helpdesk-dr-test/glpi:standin >/dev/null
echo "benchsmall_data: $FILES files, $(docker run --rm --network none -v "$VOL:/d" --entrypoint du helpdesk-dr-test/glpi:standin -sb /d | cut -f1) bytes" >&2
