#!/bin/bash
# GLPI stand-in: HTTP on :80 (busybox httpd), a log writer (files/_log/standin.log every 2 s) and, once GLPI is
# installed (config/config_db.php names its database, as the real installer writes it), users' work:
#   - a new ticket with a document: the file goes into files/_documents/<EXT>/<xx>/<sha1>.<EXT> FIRST, then
#     ticket + document + document_item link commit in ONE transaction (the trigger bumps the counter too)
#   - often (4 steps in 10) a document is deleted: its rows in one transaction, then its file
# Nothing of that while config/.standin-maintenance exists (kept in the volume: a restored GLPI keeps it).
set -e
G=/var/www/html/glpi
for d in files files/_log files/_sessions plugins config marketplace; do
  mkdir -p "$G/$d"; chown www-data:www-data "$G/$d"
done
mkdir -p /srv/www && echo '<html><body>GLPI stand-in</body></html>' >/srv/www/index.html
busybox httpd -f -p 80 -h /srv/www &
httpd=$!
trap 'kill $httpd 2>/dev/null; exit 0' TERM INT

as_www() { setpriv --reuid=33 --regid=33 --clear-groups "$@"; }
conf() { # $1: a property of config_db.php (public $dbhost = 'glpi_db';)
  sed -n "s/^[[:space:]]*public[[:space:]]*\$$1[[:space:]]*=[[:space:]]*['\"]\(.*\)['\"];.*/\1/p" "$G/config/config_db.php" 2>/dev/null | head -1
}
sql() { MYSQL_PWD="$DBPASS" mariadb -h"$DBHOST" -u"$DBUSER" -N -B --connect-timeout=3 --default-character-set=utf8mb4 "$DBNAME" "$@"; }

new_ticket() {
  local ext=TXT sha rel tmp
  tmp=$(as_www mktemp "$G/files/_tmp/upload.XXXXXX" 2>/dev/null || as_www mktemp "$G/files/upload.XXXXXX")
  as_www sh -c "head -c $((256 + RANDOM % 8192)) /dev/urandom >'$tmp'"
  sha=$(sha1sum "$tmp" | cut -c1-40)
  rel="$ext/${sha:0:2}/$sha.$ext"
  as_www mkdir -p "$G/files/_documents/$ext/${sha:0:2}"
  as_www mv "$tmp" "$G/files/_documents/$rel" # the file first, then the rows
  sql -e "START TRANSACTION;
    INSERT INTO glpi_tickets (entities_id, name, content, status, date_creation) VALUES (1 + FLOOR(RAND() * 3), 'Заявка из портала', 'Не работает принтер, скан во вложении 📎', 1, NOW());
    SET @t = LAST_INSERT_ID();
    INSERT INTO glpi_documents (tickets_id, filename, filepath, sha1sum) VALUES (@t, 'скан.txt', '$rel', '$sha');
    INSERT INTO glpi_documents_items (documents_id, items_id, itemtype, date_creation) VALUES (LAST_INSERT_ID(), @t, 'Ticket', NOW());
    COMMIT;"
}

delete_document() {
  local rel
  rel=$(sql -e "START TRANSACTION;
    SELECT id, filepath INTO @d, @p FROM glpi_documents WHERE filepath IS NOT NULL ORDER BY RAND() LIMIT 1 FOR UPDATE;
    DELETE FROM glpi_documents_items WHERE documents_id = @d;
    DELETE FROM glpi_documents WHERE id = @d;
    COMMIT;
    SELECT IFNULL(@p, '');" 2>/dev/null) || return 0
  case "$rel" in ''|*..*|/*) return 0 ;; esac
  rm -f "$G/files/_documents/$rel" # the rows first, then the file
}

n=0
while true; do
  if [ $((n % 10)) -eq 0 ]; then as_www sh -c "date -u +%s.%N >>$G/files/_log/standin.log"; fi
  n=$((n + 1))
  if [ ! -e "$G/config/.standin-maintenance" ] && DBHOST=$(conf dbhost) && [ -n "$DBHOST" ] && DBNAME=$(conf dbdefault) && [ -n "$DBNAME" ]; then
    DBUSER=$(conf dbuser); DBPASS=$(conf dbpassword)
    if [ $((RANDOM % 10)) -lt 6 ]; then new_ticket || true; else delete_document || true; fi
  fi
  sleep 0.1 & wait $!
done
