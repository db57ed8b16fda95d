CREATE TABLE users (
  id INT AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(100) NOT NULL,
  email VARCHAR(200) NULL
);
CREATE TABLE orders (
  id INT AUTO_INCREMENT PRIMARY KEY,
  user_id INT NOT NULL,
  total DECIMAL(10, 2) NOT NULL,
  FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);
CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, note TEXT NOT NULL);
CREATE TABLE settings (
  k VARCHAR(50) PRIMARY KEY,
  v VARCHAR(50),
  v_upper VARCHAR(50) AS (UPPER(v)) VIRTUAL
);
CREATE SEQUENCE tickets START WITH 100;
INSERT INTO users (name, email) VALUES ('ada', 'ada@example.com'), ('grace', NULL);
INSERT INTO orders (user_id, total) VALUES (1, 9.99), (2, 20.00);
INSERT INTO settings (k, v) VALUES ('mode', 'test');
CREATE VIEW user_names AS SELECT name FROM users;
CREATE TRIGGER users_audit AFTER INSERT ON users FOR EACH ROW
  INSERT INTO audit (note) VALUES (CONCAT('new user ', NEW.name));
CREATE PROCEDURE add_user(IN n VARCHAR(100)) INSERT INTO users (name) VALUES (n);
