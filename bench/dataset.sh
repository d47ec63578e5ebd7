#!/usr/bin/env bash
# Generates a benchmark dataset into a Docker volume, cached: regenerated only when its size changes.
#   dataset.sh [SCALE]        bench_data. At scale 1: ~600 MB of incompressible attachments (10 KB–2 MB) in 64
#                             folders, 20,000 small text files, a 400 MB SQL-text file.
#   dataset.sh small [FILES]  benchsmall_data: FILES (default 300,000) text files of 60–200 bytes in 1,000
#                             folders, like a helpdesk's ticket notes.
# Sizes, names and text are deterministic (seeded); attachment bytes are random. A stopped holder container
# (<prefix>_holder) gives dr an image to read the volume with.
set -euo pipefail
if [ "${1:-}" = small ]; then PREFIX=benchsmall; LABEL=bench.files; N=${2:-300000}; else PREFIX=bench; LABEL=bench.scale; N=${1:-1}; fi
VOL=${PREFIX}_data
HOLDER=${PREFIX}_holder
if [ "$(docker volume inspect -f "{{ index .Labels \"$LABEL\" }}" "$VOL" 2>/dev/null || true)" = "$N" ]; then
  docker inspect "$HOLDER" >/dev/null 2>&1 || docker create --name "$HOLDER" --network none -v "$VOL:/d" helpdesk-dr-test/glpi:standin >/dev/null
  exit 0
fi
docker rm -f "$HOLDER" >/dev/null 2>&1 || true
docker volume rm -f "$VOL" >/dev/null 2>&1 || true
docker volume create --label "$LABEL=$N" "$VOL" >/dev/null
if [ "$PREFIX" = bench ]; then
  script="
  set -e
  RANDOM=42
  total=0; limit=\$((600 * 1000 * 1000 * $N)); i=0
  while [ \$total -lt \$limit ]; do
    size=\$(( (RANDOM * 32768 + RANDOM) % 2000000 + 10000 ))
    dir=/d/attachments/\$(printf %02d \$((i % 64))); mkdir -p \$dir
    head -c \$size /dev/urandom > \$dir/att\$i.bin
    total=\$((total + size)); i=\$((i + 1))
  done
  awk -v n=\$((20000 * $N)) 'BEGIN { srand(7); for (i = 0; i < n; i++) { d = sprintf(\"/d/text/%02d\", i % 64); if (i < 64) system(\"mkdir -p \" d);
    f = sprintf(\"%s/note%06d.txt\", d, i); printf(\"Заявка %d: пользователь сообщает о проблеме с принтером, статус %d, приоритет %d\\n\", i, i % 6, i % 5) > f; close(f) } }'
  awk -v limit=\$((400 * 1000 * 1000 * $N)) 'BEGIN { srand(11); n = 0; i = 0; while (n < limit) { i++;
    l = sprintf(\"INSERT INTO glpi_logs VALUES (%d,\\047Ticket\\047,%d,\\047изменено поле status → %d, user %d\\047,\\0472026-01-%02d 10:%02d:%02d\\047);\\n\", i, i % 2000, i % 6, int(rand() * 500), i % 28 + 1, i % 60, i % 60);
    printf(\"%s\", l) > \"/d/dump.sql\"; n += length(l) } }'
"
else
  script="
  set -e
  awk -v n=$N 'BEGIN { srand(5); for (i = 0; i < n; i++) { d = sprintf(\"/d/notes/%03d\", i % 1000); if (i < 1000) system(\"mkdir -p \" d);
    f = sprintf(\"%s/n%07d.txt\", d, i); printf(\"ticket %d followup %d: %s\\n\", i, int(rand() * 100000), substr(\"the printer on floor three still jams after the toner change, please send someone before noon\", 1, 40 + int(rand() * 120))) > f; close(f) } }'
"
fi
docker run --rm --network none -v "$VOL:/d" --entrypoint bash helpdesk-dr-test/glpi:standin -c "$script"
docker create --name "$HOLDER" --network none -v "$VOL:/d" helpdesk-dr-test/glpi:standin >/dev/null
echo "$VOL ($LABEL $N): $(docker run --rm --network none -v "$VOL:/d" --entrypoint du helpdesk-dr-test/glpi:standin -sb /d | cut -f1) bytes" >&2
