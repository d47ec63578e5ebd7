#!/usr/bin/env bash
# Prints Redis commands (inline protocol) for `redis-cli --pipe`: Sidekiq-like queues, hashes, sets, sorted
# sets, keys with TTLs, Cyrillic and emoji keys and values; ends with SAVE.
set -euo pipefail
resp() { # RESP array from arguments (binary-safe for any UTF-8)
  printf '*%d\r\n' "$#"
  for a in "$@"; do printf '$%d\r\n%s\r\n' "$(printf '%s' "$a" | wc -c)" "$a"; done
}
resp SET chatwoot:installation:name "helpdesk v2"
resp SET "ключ:кириллица" "значение 😀"
resp HSET "user:1" name "Иван Петров" email "ivan@example.com" role agent
resp SADD online_agents 1 2 3 5 8
resp ZADD leaderboard 10 alice 20 "Борис" 30 "😀"
resp SETEX "session:expiring" 86400 "expires in a day"
for i in $(seq 1 300); do
  resp RPUSH "queue:default" "{\"class\":\"ConversationReplyMailer\",\"jid\":\"$i\",\"args\":[$i]}"
  resp SET "cache:conversation:$i" "Разговор $i"
done
resp SAVE
