-- Deterministic rows for `basis`, scaled by the number of contracts (SANDBOX_SCALE). Generated inside
-- the server from MariaDB's sequence engine so that several GB load in minutes.
USE basis;
SET SESSION foreign_key_checks = 0, unique_checks = 0;

INSERT INTO properties
SELECT seq, CONCAT('P', LPAD(seq, 7, '0')),
       CONCAT(ELT(1 + seq % 6, 'グリーン', 'サクラ', 'ひまわり', 'オーク', '青葉', '港'),
              'ハウス', ELT(1 + seq % 5, '中野', '三軒茶屋', '梅田', '天神', '札幌'), seq),
       ELT(1 + seq % 5, '東京都', '東京都', '大阪府', '福岡県', '北海道'),
       CONCAT(ELT(1 + seq % 5, '中野区中野', '世田谷区太子堂', '北区梅田', '中央区天神', '中央区北一条'),
              1 + seq % 9, '丁目', 1 + seq % 30, '-', 1 + seq % 12),
       DATE '2012-04-01' + INTERVAL (seq * 37) % 3650 DAY
  FROM seq_1_to_$properties;

INSERT INTO rooms
SELECT seq, 1 + seq % $properties, CONCAT(1 + seq % 4, LPAD(1 + seq % 12, 2, '0')),
       38000 + (seq * 7919) % 42000, 9.5 + (seq % 90) / 10
  FROM seq_1_to_$rooms;

INSERT INTO tenants
SELECT seq,
       CONCAT(ELT(1 + seq % 8, '佐藤', '鈴木', '高橋', '田中', '伊藤', '渡辺', '山本', '中村'), ' ',
              ELT(1 + seq % 6, '太郎', '花子', '健太', '美咲', '翔', '陽菜')),
       CONCAT(ELT(1 + seq % 8, 'サトウ', 'スズキ', 'タカハシ', 'タナカ', 'イトウ', 'ワタナベ', 'ヤマモト', 'ナカムラ'), ' ',
              ELT(1 + seq % 6, 'タロウ', 'ハナコ', 'ケンタ', 'ミサキ', 'ショウ', 'ヒナ')),
       CONCAT('tenant', seq, '@example.jp'),
       IF(seq % 11 = 0, NULL, CONCAT('090-', LPAD(seq % 10000, 4, '0'), '-', LPAD((seq * 31) % 10000, 4, '0'))),
       IF(seq % 13 = 0, NULL, DATE '1970-01-01' + INTERVAL (seq * 101) % 12000 DAY),
       CASE
         WHEN seq % 97 = 0 THEN CONCAT('要確認: "連帯保証人", 書類\\不足;\n再提出 ', seq)
         WHEN seq % 7 = 0 THEN CONCAT('ペット可の部屋を希望 🐈 ', seq)
         WHEN seq % 5 = 0 THEN NULL
         ELSE CONCAT('入居者メモ ', REPEAT('あ', seq % 40))
       END
  FROM seq_1_to_$contracts;

INSERT INTO contracts
SELECT seq, seq, 1 + seq % $rooms,
       ELT(1 + seq % 10, 'active', 'active', 'active', 'active', 'active', 'pending', 'notice',
           'terminated', 'terminated', 'cancelled'),
       DATE '2018-01-01' + INTERVAL (seq * 13) % 2500 DAY,
       IF(seq % 10 >= 7, DATE '2018-01-01' + INTERVAL (seq * 13) % 2500 + 365 DAY, NULL),
       38000 + (seq * 7919) % 42000,
       TIMESTAMP '2024-01-01 00:00:00' + INTERVAL (seq * 17) % 31536000 SECOND
  FROM seq_1_to_$contracts;

INSERT INTO payments
SELECT seq, 1 + seq % $contracts, DATE '2023-01-01' + INTERVAL seq % 700 DAY,
       IF(seq % 53 = 0, -5000, 38000 + (seq * 7919) % 42000),
       ELT(1 + seq % 4, 'bank', 'card', 'cash', 'konbini'),
       CASE WHEN seq % 3 = 0 THEN NULL
            WHEN seq % 29 = 0 THEN CONCAT('返金, "日割り" ', seq, '\t円')
            ELSE CONCAT(MONTH(DATE '2023-01-01' + INTERVAL seq % 700 DAY), '月分家賃') END
  FROM seq_1_to_$payments;

INSERT INTO documents
SELECT seq, 1 + (seq * 4) % $contracts, CONCAT('契約書_', seq, '.pdf'), 'application/pdf',
       CONCAT(UNHEX('255044462D312E370A'), UNHEX(REPEAT(SHA2(seq, 256), 1 + seq % 24)), UNHEX('0000FF00'))
  FROM seq_1_to_$documents;

INSERT INTO access_logs
SELECT TIMESTAMP '2025-01-01 00:00:00' + INTERVAL seq * 7 SECOND + INTERVAL seq % 1000 * 1000 MICROSECOND,
       IF(seq % 17 = 0, NULL, 1 + seq % $contracts),
       ELT(1 + seq % 5, 'login', 'view_contract', 'download', 'update_profile', 'logout'),
       CONCAT('203.0.113.', seq % 250),
       ELT(1 + seq % 3, 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)',
           'Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0',
           'Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36')
  FROM seq_1_to_$access_logs;

-- A few status changes so the trigger has written history.
UPDATE contracts SET status = 'notice', updated_at = TIMESTAMP '2025-06-01 09:00:00'
 WHERE id % 50 = 1 AND status = 'active';
