-- The vendor's `basis` schema as the sandbox reproduces it: a share-house operator's
-- properties, rooms, tenants, contracts and what hangs off them. Shapes chosen to exercise a
-- dump: utf8mb4 Japanese text, a BLOB column, a table without a primary key, a view, a
-- trigger and a stored procedure.
CREATE DATABASE IF NOT EXISTS basis CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;
USE basis;

CREATE TABLE properties (
  id INT UNSIGNED NOT NULL PRIMARY KEY,
  code CHAR(8) NOT NULL UNIQUE,
  name VARCHAR(100) NOT NULL,
  prefecture VARCHAR(10) NOT NULL,
  address VARCHAR(200) NOT NULL,
  opened_on DATE NOT NULL
) ENGINE=InnoDB;

CREATE TABLE rooms (
  id INT UNSIGNED NOT NULL PRIMARY KEY,
  property_id INT UNSIGNED NOT NULL,
  room_no VARCHAR(10) NOT NULL,
  rent_yen INT UNSIGNED NOT NULL,
  floor_area_m2 DECIMAL(6,2) NOT NULL,
  KEY (property_id),
  CONSTRAINT fk_rooms_property FOREIGN KEY (property_id) REFERENCES properties (id)
) ENGINE=InnoDB;

CREATE TABLE tenants (
  id INT UNSIGNED NOT NULL PRIMARY KEY,
  name_kanji VARCHAR(50) NOT NULL,
  name_kana VARCHAR(50) NOT NULL,
  email VARCHAR(100) NOT NULL,
  phone VARCHAR(20) NULL,
  birth_date DATE NULL,
  note TEXT NULL
) ENGINE=InnoDB;

CREATE TABLE contracts (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  tenant_id INT UNSIGNED NOT NULL,
  room_id INT UNSIGNED NOT NULL,
  status ENUM('pending','active','notice','terminated','cancelled') NOT NULL,
  start_date DATE NOT NULL,
  end_date DATE NULL,
  monthly_rent_yen INT UNSIGNED NOT NULL,
  updated_at DATETIME NOT NULL,
  KEY (tenant_id),
  KEY (room_id),
  KEY (status)
) ENGINE=InnoDB;

CREATE TABLE contract_status_history (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  contract_id INT UNSIGNED NOT NULL,
  old_status VARCHAR(16) NOT NULL,
  new_status VARCHAR(16) NOT NULL,
  changed_at DATETIME NOT NULL,
  KEY (contract_id)
) ENGINE=InnoDB;

CREATE TABLE payments (
  id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  contract_id INT UNSIGNED NOT NULL,
  paid_on DATE NOT NULL,
  amount_yen INT NOT NULL,
  method ENUM('bank','card','cash','konbini') NOT NULL,
  memo VARCHAR(200) NULL,
  KEY (contract_id)
) ENGINE=InnoDB;

CREATE TABLE documents (
  id INT UNSIGNED NOT NULL PRIMARY KEY,
  contract_id INT UNSIGNED NOT NULL,
  filename VARCHAR(120) NOT NULL,
  mime_type VARCHAR(60) NOT NULL,
  body MEDIUMBLOB NOT NULL,
  KEY (contract_id)
) ENGINE=InnoDB;

-- No primary key, as the vendor's audit table really is.
CREATE TABLE access_logs (
  logged_at DATETIME(3) NOT NULL,
  tenant_id INT UNSIGNED NULL,
  action VARCHAR(32) NOT NULL,
  ip VARCHAR(45) NOT NULL,
  user_agent VARCHAR(255) NOT NULL
) ENGINE=InnoDB;

CREATE VIEW v_active_contracts AS
  SELECT c.id AS contract_id, t.name_kanji, p.name AS property_name, r.room_no,
         c.monthly_rent_yen, c.start_date
    FROM contracts c
    JOIN tenants t ON t.id = c.tenant_id
    JOIN rooms r ON r.id = c.room_id
    JOIN properties p ON p.id = r.property_id
   WHERE c.status = 'active';

DELIMITER //
CREATE TRIGGER trg_contracts_status_history
AFTER UPDATE ON contracts FOR EACH ROW
BEGIN
  IF NEW.status <> OLD.status THEN
    INSERT INTO contract_status_history (contract_id, old_status, new_status, changed_at)
    VALUES (NEW.id, OLD.status, NEW.status, NEW.updated_at);
  END IF;
END//

CREATE PROCEDURE sp_contract_status_counts()
  READS SQL DATA
BEGIN
  SELECT status, COUNT(*) AS contracts FROM contracts GROUP BY status ORDER BY status;
END//
DELIMITER ;
