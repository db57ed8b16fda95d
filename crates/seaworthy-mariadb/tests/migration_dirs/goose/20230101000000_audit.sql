-- +goose Up
CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(100) NOT NULL);

-- +goose StatementBegin
CREATE PROCEDURE add_note(IN text VARCHAR(100))
BEGIN
    INSERT INTO audit (note) VALUES (text);
END;
-- +goose StatementEnd

CALL add_note('created');

-- +goose Down
DROP PROCEDURE add_note;
DROP TABLE audit;
