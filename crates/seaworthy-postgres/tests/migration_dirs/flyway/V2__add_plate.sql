ALTER TABLE flyway_cars ADD COLUMN plate text;
