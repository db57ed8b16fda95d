-- +goose Up
CREATE TABLE goose_notes (
    id serial PRIMARY KEY,
    body text NOT NULL,
    length int
);

-- +goose StatementBegin
CREATE FUNCTION goose_note_length() RETURNS trigger AS $$
BEGIN
    NEW.length := length(NEW.body);
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd

CREATE TRIGGER goose_note_length BEFORE INSERT ON goose_notes
    FOR EACH ROW EXECUTE FUNCTION goose_note_length();
INSERT INTO goose_notes (body) VALUES ('hello');

-- +goose Down
DROP TABLE goose_notes;
DROP FUNCTION goose_note_length();
