-- +goose Up
CALL add_note('second');
-- +goose Down
THIS IS NOT SQL;
