-- Seed for the GLPI database (MariaDB): what breaks naive backups — InnoDB tables with foreign keys,
-- a trigger, a function and a procedure, a view, an event, BLOBs with every byte value, utf8mb4 text.
SET NAMES utf8mb4;
SET SESSION max_recursive_iterations = 100000;
CREATE TABLE glpi_entities (
  id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(255) NOT NULL, comment TEXT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE glpi_tickets (
  id INT PRIMARY KEY AUTO_INCREMENT, entities_id INT NOT NULL, name VARCHAR(255) NOT NULL, content LONGTEXT,
  status TINYINT NOT NULL DEFAULT 1, date_creation DATETIME NOT NULL, amount DECIMAL(12,2), ratio DOUBLE,
  CONSTRAINT fk_ticket_entity FOREIGN KEY (entities_id) REFERENCES glpi_entities (id), KEY idx_status (status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE glpi_documents (
  id INT PRIMARY KEY AUTO_INCREMENT, tickets_id INT NOT NULL, filename VARCHAR(255) NOT NULL, sha1sum CHAR(40),
  payload LONGBLOB, filepath VARCHAR(255) NULL COMMENT 'relative to files/_documents (the stand-in''s uploads)',
  CONSTRAINT fk_doc_ticket FOREIGN KEY (tickets_id) REFERENCES glpi_tickets (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE glpi_documents_items (
  id INT PRIMARY KEY AUTO_INCREMENT, documents_id INT NOT NULL, items_id INT NOT NULL, itemtype VARCHAR(100) NOT NULL,
  date_creation DATETIME NOT NULL, CONSTRAINT fk_docitem_doc FOREIGN KEY (documents_id) REFERENCES glpi_documents (id),
  KEY idx_item (itemtype, items_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE glpi_logs (
  id BIGINT PRIMARY KEY AUTO_INCREMENT, itemtype VARCHAR(100) NOT NULL, items_id INT NOT NULL, message VARCHAR(255),
  date_mod DATETIME NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE glpi_ticket_counters (
  entities_id INT PRIMARY KEY, ticket_count INT NOT NULL DEFAULT 0
) ENGINE=InnoDB;

DELIMITER ;;
CREATE TRIGGER glpi_tickets_after_insert AFTER INSERT ON glpi_tickets FOR EACH ROW
BEGIN
  INSERT INTO glpi_ticket_counters (entities_id, ticket_count) VALUES (NEW.entities_id, 1)
    ON DUPLICATE KEY UPDATE ticket_count = ticket_count + 1;
END;;
CREATE FUNCTION glpi_ticket_label(t_id INT) RETURNS VARCHAR(300) CHARSET utf8mb4 DETERMINISTIC READS SQL DATA
BEGIN
  RETURN CONCAT('#', t_id, ' ', (SELECT name FROM glpi_tickets WHERE id = t_id));
END;;
CREATE PROCEDURE glpi_close_old(IN days INT)
BEGIN
  UPDATE glpi_tickets SET status = 6 WHERE date_creation < NOW() - INTERVAL days DAY;
END;;
DELIMITER ;

CREATE VIEW glpi_open_tickets AS
  SELECT t.id, t.name, e.name AS entity FROM glpi_tickets t JOIN glpi_entities e ON e.id = t.entities_id WHERE t.status < 5;
CREATE EVENT glpi_purge_logs ON SCHEDULE EVERY 1 DAY DISABLE
  DO DELETE FROM glpi_logs WHERE date_mod < NOW() - INTERVAL 365 DAY;

INSERT INTO glpi_entities (name, comment) VALUES
  ('Головной офис', 'Главная организация 🏢'), ('Филиал Омск', 'Омский филиал 🌍'), ('Support 🛠', 'English, "quotes", \'apostrophes\', back\\slash');

INSERT INTO glpi_tickets (entities_id, name, content, status, date_creation, amount, ratio)
  WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 2000)
  SELECT 1 + (n MOD 3), CONCAT('Заявка №', n, ' — не работает принтер 🖨'),
         CONCAT(REPEAT('Текст заявки; ', 1 + n MOD 20), ' 😀 ', n, IF(n MOD 7 = 0, '\ttab\nnewline', '')),
         1 + (n MOD 6), TIMESTAMP '2026-01-01 00:00:00' + INTERVAL n MINUTE, n * 1.25, n / 3
  FROM seq;

INSERT INTO glpi_documents (tickets_id, filename, sha1sum, payload)
  WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 40)
  SELECT n, CONCAT('скан_', n, '.pdf'), SHA1(n), REPEAT(RANDOM_BYTES(1024), 16 + n) FROM seq;
INSERT INTO glpi_documents (tickets_id, filename, sha1sum, payload)
  VALUES (1, 'all-bytes.bin', NULL, X'000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F202122232425262728292A2B2C2D2E2F303132333435363738393A3B3C3D3E3F404142434445464748494A4B4C4D4E4F505152535455565758595A5B5C5D5E5F606162636465666768696A6B6C6D6E6F707172737475767778797A7B7C7D7E7F808182838485868788898A8B8C8D8E8F909192939495969798999A9B9C9D9E9FA0A1A2A3A4A5A6A7A8A9AAABACADAEAFB0B1B2B3B4B5B6B7B8B9BABBBCBDBEBFC0C1C2C3C4C5C6C7C8C9CACBCCCDCECFD0D1D2D3D4D5D6D7D8D9DADBDCDDDEDFE0E1E2E3E4E5E6E7E8E9EAEBECEDEEEFF0F1F2F3F4F5F6F7F8F9FAFBFCFDFEFF'), (2, 'empty.bin', NULL, X''), (3, 'null.bin', NULL, NULL);

INSERT INTO glpi_logs (itemtype, items_id, message, date_mod)
  WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 5000)
  SELECT 'Ticket', 1 + n MOD 2000, CONCAT('изменено поле status → ', n MOD 6), TIMESTAMP '2026-01-01 00:00:00' + INTERVAL n SECOND
  FROM seq;
