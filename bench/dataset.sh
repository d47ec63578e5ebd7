#!/usr/bin/env bash
# Generates the benchmark dataset into Docker volume bench_data (cached: regenerated only when the scale
# changes). At scale 1: ~600 MB of incompressible attachments (10 KB–2 MB) in 64 folders, 20,000 small text
# files, a 400 MB SQL-text file. Sizes and names are deterministic (seeded); attachment bytes are random.
set -euo pipefail
SCALE=${1:-1}
VOL=bench_data
if [ "$(docker volume inspect -f '{{ index .Labels "bench.scale" }}' "$VOL" 2>/dev/null || true)" = "$SCALE" ]; then
  # cached; the stopped holder container gives dr an image to read the volume with
  docker inspect bench_holder >/dev/null 2>&1 || docker create --name bench_holder --network none -v "$VOL:/d" helpdesk-dr-test/glpi:standin >/dev/null
  exit 0
fi
docker rm -f bench_holder >/dev/null 2>&1 || true
docker volume rm -f "$VOL" >/dev/null 2>&1 || true
docker volume create --label "bench.scale=$SCALE" "$VOL" >/dev/null
docker run --rm --network none -v "$VOL:/d" --entrypoint bash helpdesk-dr-test/glpi:standin -c "
  set -e
  RANDOM=42
  total=0; limit=\$((600 * 1000 * 1000 * $SCALE)); i=0
  while [ \$total -lt \$limit ]; do
    size=\$(( (RANDOM * 32768 + RANDOM) % 2000000 + 10000 ))
    dir=/d/attachments/\$(printf %02d \$((i % 64))); mkdir -p \$dir
    head -c \$size /dev/urandom > \$dir/att\$i.bin
    total=\$((total + size)); i=\$((i + 1))
  done
  awk -v n=\$((20000 * $SCALE)) 'BEGIN { srand(7); for (i = 0; i < n; i++) { d = sprintf(\"/d/text/%02d\", i % 64); if (i < 64) system(\"mkdir -p \" d);
    f = sprintf(\"%s/note%06d.txt\", d, i); printf(\"Заявка %d: пользователь сообщает о проблеме с принтером, статус %d, приоритет %d\\n\", i, i % 6, i % 5) > f; close(f) } }'
  awk -v limit=\$((400 * 1000 * 1000 * $SCALE)) 'BEGIN { srand(11); n = 0; i = 0; while (n < limit) { i++;
    l = sprintf(\"INSERT INTO glpi_logs VALUES (%d,\\047Ticket\\047,%d,\\047изменено поле status → %d, user %d\\047,\\0472026-01-%02d 10:%02d:%02d\\047);\\n\", i, i % 2000, i % 6, int(rand() * 500), i % 28 + 1, i % 60, i % 60);
    printf(\"%s\", l) > \"/d/dump.sql\"; n += length(l) } }'
"
docker create --name bench_holder --network none -v "$VOL:/d" helpdesk-dr-test/glpi:standin >/dev/null
echo "bench_data (scale $SCALE): $(docker run --rm --network none -v "$VOL:/d" --entrypoint du helpdesk-dr-test/glpi:standin -sb /d | cut -f1) bytes" >&2
