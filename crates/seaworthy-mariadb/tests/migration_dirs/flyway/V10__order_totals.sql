CREATE TABLE order_totals (user_id INT PRIMARY KEY, total INT NOT NULL);

DELIMITER $$
CREATE TRIGGER orders_total AFTER INSERT ON orders FOR EACH ROW
BEGIN
    INSERT INTO order_totals (user_id, total) VALUES (NEW.user_id, NEW.amount)
        ON DUPLICATE KEY UPDATE total = total + NEW.amount;
END$$
DELIMITER ;

INSERT INTO orders (user_id, amount) VALUES (1, 5), (1, 7);
