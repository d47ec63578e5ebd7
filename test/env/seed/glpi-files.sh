# Seeds GLPI's volumes (run inside v2_glpi as root): owners (www-data uid 33, root, an unnamed uid), modes,
# symlinks, a hard link, empty dirs, a 0-byte file, names over 100 bytes, non-ASCII names, old mtimes.
set -euo pipefail
G=/var/www/html/glpi
cd "$G"
mkdir -p files/_documents/PDF/3a files/_documents/JPG/7f files/_pictures files/_tmp files/_cache/empty_dir \
  files/_sessions plugins/fields/inc plugins/fields/empty marketplace/formcreator/js config
head -c 300000 /dev/urandom >files/_documents/PDF/3a/3a7bd3e2360a3d29eea436fcfb7e44c735d117c4.PDF
head -c 65536 /dev/urandom >files/_documents/JPG/7f/7f1b2c.JPG
printf '%%PDF-1.4 Отчёт за январь\n' >"files/_documents/Заявка №42 — отчёт.pdf"
printf 'emoji name\n' >"files/_documents/вложение 📎 (копия).txt"
long=$(printf 'очень_длинное_имя_файла_%.0s' 1 2 3 4 5)   # > 100 bytes in UTF-8
printf 'long name\n' >"files/_documents/$long.txt"
deep=files/_documents/$(printf 'level-%02d-directory-name/' $(seq 1 12))
mkdir -p "$deep" && printf 'deep path over 255 bytes\n' >"$deep/file.txt"
: >files/_tmp/zero-bytes.txt
printf 'sess_data' >files/_sessions/sess_0123456789abcdef
ln -s ../_documents/PDF files/_pictures/pdf-link
ln -s "Заявка №42 — отчёт.pdf" "files/_documents/ссылка на отчёт"
ln files/_documents/PDF/3a/3a7bd3e2360a3d29eea436fcfb7e44c735d117c4.PDF files/_documents/hardlink.PDF
printf '<?php\nclass PluginFieldsField {}\n' >plugins/fields/inc/field.class.php
printf '#!/bin/sh\necho setup\n' >plugins/fields/setup.sh
printf '{"name":"formcreator"}\n' >marketplace/formcreator/composer.json
printf 'console.log(1)\n' >marketplace/formcreator/js/app.js
ln -s formcreator marketplace/current
# as GLPI's installer writes it; the credentials come from the exec environment (stack.sh seed), never argv
printf '<?php\nclass DB extends DBmysql {\n  public $dbhost = "glpi_db";\n  public $dbuser = "%s";\n  public $dbpassword = "%s";\n  public $dbdefault = "%s";\n  public $use_utf8mb4 = true;\n}\n' \
  "${GLPI_DB_USER:?}" "${GLPI_DB_PASSWORD:?}" "${GLPI_DB_NAME:?}" >config/config_db.php
printf 'GLPI_KEY' >config/glpicrypt.key
chown -R 33:33 files plugins marketplace config
chmod 0750 files/_documents files/_sessions
chmod 0640 files/_documents/PDF/3a/*.PDF "files/_documents/Заявка №42 — отчёт.pdf"
chmod 0755 plugins/fields/setup.sh
chmod 0444 marketplace/formcreator/composer.json
chmod 1777 files/_tmp
chmod 0600 config/config_db.php config/glpicrypt.key
chown 0:0 plugins/fields/inc/field.class.php
chown 1234:5678 files/_cache/empty_dir
chown -h 0:0 files/_pictures/pdf-link
touch -h -d '2025-01-02 03:04:05' files/_pictures/pdf-link
touch -d '2024-06-30 12:00:00' "files/_documents/Заявка №42 — отчёт.pdf" marketplace/formcreator/composer.json
touch files/.dr-test-seeded
