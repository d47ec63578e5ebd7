# The Chatwoot stand-in's application code, loaded by Debian's real Sidekiq 6.4 (`bundle exec sidekiq` →
# `sidekiq -C config/sidekiq.yml -r ./lib/standin.rb`) against the stack's Redis (REDIS_URL).
#   CreateAttachmentJob  writes a file into /app/storage (Active Storage's disk layout xx/yy/key) FIRST, then
#                        commits conversation + message + attachment + active_storage_blobs +
#                        active_storage_attachments in ONE transaction (all or nothing)
#   PurgeAttachmentJob   a user deletes an attachment: the rows go in one transaction, then the file
# A scheduler thread enqueues them continuously: most at once, some in the future (schedule set), some that
# fail until a given time (retry set). Nothing is written before `rails db:chatwoot_prepare` has run
# (ar_internal_metadata exists), nor while /app/storage/.standin-maintenance exists.
require 'sidekiq'
require 'pg'
require 'json'
require 'securerandom'
require 'digest'
require 'fileutils'

Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=) # redis-rb 4.8 vs Sidekiq 6.4

module Standin
  STORAGE = '/app/storage'
  MAINTENANCE = File.join(STORAGE, '.standin-maintenance')

  def self.connect
    PG.connect(host: ENV.fetch('POSTGRES_HOST'), dbname: ENV.fetch('POSTGRES_DATABASE'),
               user: ENV.fetch('POSTGRES_USERNAME'), password: ENV.fetch('POSTGRES_PASSWORD'), connect_timeout: 5)
  end

  # A small pool shared by Sidekiq's threads (like ActiveRecord's): at most POOL_MAX connections, a connection
  # dropped after any error (the next job reconnects). A connection kept in Thread.current[] (fiber-local) leaked
  # one per job here, and PostgreSQL ran out of connections within minutes.
  POOL_MAX = 4
  @pool = Queue.new
  @made = 0
  @lock = Mutex.new

  def self.checkout
    begin
      return @pool.pop(true)
    rescue ThreadError
      nil
    end
    if @lock.synchronize { @made < POOL_MAX && (@made += 1) }
      begin
        return connect
      rescue StandardError
        @lock.synchronize { @made -= 1 }
        raise
      end
    end
    @pool.pop
  end

  def self.pg
    c = checkout
    begin
      r = yield c
    rescue StandardError
      (c.close rescue nil)
      @lock.synchronize { @made -= 1 }
      raise
    end
    @pool.push(c)
    r
  end

  def self.ready?
    pg { |c| c.exec("SELECT to_regclass('public.ar_internal_metadata') IS NOT NULL AS ok").getvalue(0, 0) == 't' }
  rescue StandardError
    false
  end

  def self.maintenance? = File.exist?(MAINTENANCE)

  def self.path_of(key) = File.join(STORAGE, key[0, 2], key[2, 2], key)

  def self.start_scheduler
    @running = true
    @thread = Thread.new do
      ready = false
      while @running
        begin
          ready ||= ready?
          if ready && !maintenance?
            r = rand
            if r < 0.50 then CreateAttachmentJob.perform_async
            elsif r < 0.60 then CreateAttachmentJob.perform_in(5 + rand(25))
            elsif r < 0.68 then CreateAttachmentJob.perform_async(Time.now.to_f + 20) # fails into the retry set
            else PurgeAttachmentJob.perform_async
            end
          end
        rescue StandardError => e
          Sidekiq.logger.warn("stand-in scheduler: #{e.class}: #{e.message}")
        end
        sleep 0.1 # ~10 jobs/s: a third of them purges, so deletes are frequent enough to matter to a backup
      end
    end
  end

  def self.stop_scheduler
    @running = false
    @thread&.join(2)
  end
end

class CreateAttachmentJob
  include Sidekiq::Worker
  sidekiq_options queue: 'medium', retry: 25

  def perform(fail_until = nil)
    return if Standin.maintenance?
    raise 'stand-in: the mail server is not answering (retried by Sidekiq)' if fail_until && Time.now.to_f < fail_until

    key = SecureRandom.alphanumeric(28).downcase
    data = SecureRandom.random_bytes(512 + rand(16_384))
    path = Standin.path_of(key)
    FileUtils.mkdir_p(File.dirname(path))
    File.open(path, 'wb') { |f| f.write(data); f.fsync } # the file first, then the rows (Active Storage)
    Standin.pg do |c|
      c.transaction do
        conv = c.exec_params('INSERT INTO conversations (account_id, display_id, status, additional_attributes, created_at, updated_at) ' \
                             'VALUES ($1, $2, 0, $3, now(), now()) RETURNING id',
                             [1 + rand(3), rand(1_000_000_000), JSON.dump(standin: 'sidekiq', jid: jid)]).getvalue(0, 0)
        msg = c.exec_params('INSERT INTO messages (conversation_id, content, content_attributes, created_at) VALUES ($1, $2, $3, now()) RETURNING id',
                            [conv, "Вложение от клиента 📎 #{key[0, 6]}", JSON.dump(standin: true)]).getvalue(0, 0)
        att = c.exec_params('INSERT INTO attachments (message_id, file_name) VALUES ($1, $2) RETURNING id',
                            [msg, "upload-#{key[0, 8]}.bin"]).getvalue(0, 0)
        blob = c.exec_params('INSERT INTO active_storage_blobs (key, filename, content_type, byte_size, checksum, service_name, created_at) ' \
                             "VALUES ($1, $2, 'application/octet-stream', $3, $4, 'local', now()) RETURNING id",
                             [key, "upload-#{key[0, 8]}.bin", data.bytesize, Digest::MD5.base64digest(data)]).getvalue(0, 0)
        c.exec_params("INSERT INTO active_storage_attachments (name, record_type, record_id, blob_id, created_at) VALUES ('file', 'Attachment', $1, $2, now())",
                      [att, blob])
      end
    end
  end
end

class PurgeAttachmentJob
  include Sidekiq::Worker
  sidekiq_options queue: 'active_storage_purge', retry: 3

  def perform
    return if Standin.maintenance?

    key = nil
    Standin.pg do |c|
      c.transaction do
        r = c.exec('SELECT b.id, b.key, a.record_id FROM active_storage_blobs b JOIN active_storage_attachments a ON a.blob_id = b.id ' \
                   'ORDER BY random() LIMIT 1 FOR UPDATE OF b SKIP LOCKED')
        next if r.ntuples.zero?

        blob, key, att = r.getvalue(0, 0), r.getvalue(0, 1), r.getvalue(0, 2)
        c.exec_params('DELETE FROM active_storage_attachments WHERE blob_id = $1', [blob])
        c.exec_params('DELETE FROM active_storage_blobs WHERE id = $1', [blob])
        c.exec_params('DELETE FROM attachments WHERE id = $1', [att])
      end
    end
    return unless key

    begin
      File.delete(Standin.path_of(key)) # the rows first, then the file
    rescue Errno::ENOENT
      nil
    end
  end
end

Sidekiq.configure_server do |config|
  config.on(:startup) { Standin.start_scheduler }
  config.on(:quiet) { Standin.stop_scheduler }
  config.on(:shutdown) { Standin.stop_scheduler }
end
