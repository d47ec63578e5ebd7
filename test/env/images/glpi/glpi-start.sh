#!/bin/bash
# GLPI stand-in: HTTP on :80 (busybox httpd) + a writer that appends to files/_log/standin.log every 2 s.
set -e
G=/var/www/html/glpi
for d in files files/_log files/_sessions plugins config marketplace; do
  mkdir -p "$G/$d"; chown www-data:www-data "$G/$d"
done
mkdir -p /srv/www && echo '<html><body>GLPI stand-in</body></html>' >/srv/www/index.html
busybox httpd -f -p 80 -h /srv/www &
httpd=$!
trap 'kill $httpd 2>/dev/null; exit 0' TERM INT
while true; do
  setpriv --reuid=33 --regid=33 --clear-groups sh -c "date -u +%s.%N >>$G/files/_log/standin.log"
  sleep 2 & wait $!
done
