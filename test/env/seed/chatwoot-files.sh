# Seeds Chatwoot's storage volume (run inside v2_chatwoot as root): Active Storage layout (xx/yy/key),
# incompressible attachments of varied sizes.
set -euo pipefail
S=/app/storage
for i in $(seq 1 24); do
  key=$(printf 'seedkey%02d%s' "$i" "$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')")
  d="$S/${key:0:2}/${key:2:2}"
  mkdir -p "$d"
  head -c $((i * 20000)) /dev/urandom >"$d/$key"
done
mkdir -p "$S/empty-variant-dir"
printf 'Привет, мир 👋\n' >"$S/readme-кириллица.txt"
