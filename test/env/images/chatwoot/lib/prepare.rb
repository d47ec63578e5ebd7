# The stand-in's `rails db:chatwoot_prepare`: Chatwoot's Active Storage tables and Rails' schema marker, on top
# of the seeded schema. Idempotent.
require 'pg'
c = PG.connect(host: ENV.fetch('POSTGRES_HOST'), dbname: ENV.fetch('POSTGRES_DATABASE'),
               user: ENV.fetch('POSTGRES_USERNAME'), password: ENV.fetch('POSTGRES_PASSWORD'), connect_timeout: 10)
c.exec(<<~SQL)
  CREATE TABLE IF NOT EXISTS active_storage_blobs (
    id bigserial PRIMARY KEY, key varchar NOT NULL UNIQUE, filename varchar NOT NULL, content_type varchar, metadata text,
    service_name varchar NOT NULL, byte_size bigint NOT NULL, checksum varchar, created_at timestamptz NOT NULL);
  CREATE TABLE IF NOT EXISTS active_storage_attachments (
    id bigserial PRIMARY KEY, name varchar NOT NULL, record_type varchar NOT NULL, record_id bigint NOT NULL,
    blob_id bigint NOT NULL REFERENCES active_storage_blobs (id), created_at timestamptz NOT NULL);
  CREATE INDEX IF NOT EXISTS index_active_storage_attachments_on_blob_id ON active_storage_attachments (blob_id);
  CREATE TABLE IF NOT EXISTS ar_internal_metadata (key varchar PRIMARY KEY, value varchar, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL);
  INSERT INTO ar_internal_metadata VALUES ('environment', 'production', now(), now()) ON CONFLICT (key) DO NOTHING;
SQL
puts 'stand-in: database prepared'
