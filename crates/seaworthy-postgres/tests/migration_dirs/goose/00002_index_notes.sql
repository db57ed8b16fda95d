-- +goose NO TRANSACTION
-- +goose Up
CREATE INDEX CONCURRENTLY goose_notes_body ON goose_notes (body);
CREATE INDEX CONCURRENTLY goose_notes_length ON goose_notes (length);

-- +goose Down
DROP INDEX CONCURRENTLY goose_notes_length;
DROP INDEX CONCURRENTLY goose_notes_body;
