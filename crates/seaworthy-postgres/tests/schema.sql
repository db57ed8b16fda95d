-- The baseline the tests (and the crate docs' example) use: tables with a serial, an identity and
-- a generated column, a foreign key, a trigger, a role with a grant, and seed rows.
CREATE TABLE users (
    id serial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    created timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id int NOT NULL REFERENCES users (id),
    amount numeric(10, 2) NOT NULL,
    note text,
    note_length int GENERATED ALWAYS AS (length(note)) STORED
);
CREATE TABLE audit (id serial PRIMARY KEY, message text NOT NULL);
CREATE FUNCTION audit_user() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit (message) VALUES ('new user ' || NEW.name);
    RETURN NEW;
END
$$;
CREATE TRIGGER users_audit AFTER INSERT ON users FOR EACH ROW EXECUTE FUNCTION audit_user();
CREATE ROLE app_reader NOLOGIN;
GRANT SELECT ON users TO app_reader;
INSERT INTO users (name, created) VALUES
    ('ada', '2020-01-01 00:00:00+00'),
    ('grace', '2020-01-02 00:00:00+00'),
    ('it''s "quoted", {braced} \ and (parenthesised)', '2020-01-03 00:00:00+00');
