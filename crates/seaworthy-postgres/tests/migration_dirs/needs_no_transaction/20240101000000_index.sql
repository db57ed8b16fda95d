CREATE TABLE needs_marker (id int);
CREATE INDEX CONCURRENTLY needs_marker_id ON needs_marker (id);
