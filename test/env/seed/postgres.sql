-- Seed for the Chatwoot database (PostgreSQL): two schemas, sequences, a function, a trigger, a view,
-- a materialized view, jsonb, bytea with every byte value, Cyrillic and emoji text, a role (globals).
CREATE SCHEMA reporting;
CREATE ROLE chatwoot_readonly NOLOGIN;
CREATE TABLE accounts (id serial PRIMARY KEY, name text NOT NULL, settings jsonb NOT NULL DEFAULT '{}', created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE conversations (
  id bigserial PRIMARY KEY, account_id int NOT NULL REFERENCES accounts (id), display_id int NOT NULL, status smallint NOT NULL,
  additional_attributes jsonb, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL
);
CREATE TABLE messages (
  id bigserial PRIMARY KEY, conversation_id bigint NOT NULL REFERENCES conversations (id), content text,
  content_attributes jsonb, created_at timestamptz NOT NULL
);
CREATE INDEX messages_conversation_idx ON messages (conversation_id);
CREATE TABLE attachments (id serial PRIMARY KEY, message_id bigint REFERENCES messages (id), file_name text, data bytea);
CREATE SEQUENCE reporting.invoice_seq START 1000;
SELECT setval('reporting.invoice_seq', 1500);
CREATE TABLE reporting.daily_stats (day date PRIMARY KEY, conversations int NOT NULL, messages int NOT NULL, meta jsonb);

CREATE FUNCTION touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END $$;
CREATE TRIGGER conversations_touch BEFORE UPDATE ON conversations FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
CREATE FUNCTION reporting.refresh_daily() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE n integer;
BEGIN
  INSERT INTO reporting.daily_stats (day, conversations, messages, meta)
    SELECT c.created_at::date, count(DISTINCT c.id), count(m.id), jsonb_build_object('source', 'refresh_daily', 'emoji', '📊')
    FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id GROUP BY 1
  ON CONFLICT (day) DO UPDATE SET conversations = EXCLUDED.conversations, messages = EXCLUDED.messages;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;
CREATE VIEW reporting.open_conversations AS SELECT id, account_id, display_id FROM conversations WHERE status = 0;
GRANT USAGE ON SCHEMA reporting TO chatwoot_readonly;
GRANT SELECT ON ALL TABLES IN SCHEMA reporting TO chatwoot_readonly;

INSERT INTO accounts (name, settings) VALUES
  ('Поддержка', '{"locale": "ru", "greeting": "Здравствуйте! 👋"}'),
  ('Sales 💼', '{"locale": "en", "nested": {"a": [1, 2, 3], "b": null}}'),
  ('Tab\tand "quotes"', '{}');
INSERT INTO conversations (account_id, display_id, status, additional_attributes, created_at, updated_at)
  SELECT 1 + n % 3, n, n % 3, jsonb_build_object('browser', 'Firefox', 'n', n, 'тег', 'значение'),
         timestamptz '2026-01-01 00:00:00+00' + n * interval '7 minutes', timestamptz '2026-01-01 00:00:00+00' + n * interval '7 minutes'
  FROM generate_series(1, 1000) AS n;
INSERT INTO messages (conversation_id, content, content_attributes, created_at)
  SELECT 1 + n % 1000, 'Сообщение ' || n || ' — спасибо за обращение 🙏' || CASE WHEN n % 11 = 0 THEN E'\nвторая строка\\' ELSE '' END,
         CASE WHEN n % 5 = 0 THEN jsonb_build_object('in_reply_to', n - 1) END,
         timestamptz '2026-01-01 00:00:00+00' + n * interval '1 minute'
  FROM generate_series(1, 5000) AS n;
INSERT INTO attachments (message_id, file_name, data)
  SELECT n, 'фото_' || n || '.jpg', decode(repeat(md5(n::text), 64 * n), 'hex') FROM generate_series(1, 50) AS n;
INSERT INTO attachments (message_id, file_name, data) VALUES (51, 'all-bytes.bin', '\x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff'), (52, 'empty.bin', ''), (53, 'null.bin', NULL);
SELECT reporting.refresh_daily();
CREATE MATERIALIZED VIEW reporting.messages_per_account AS
  SELECT c.account_id, count(*) AS messages FROM messages m JOIN conversations c ON c.id = m.conversation_id GROUP BY 1;
