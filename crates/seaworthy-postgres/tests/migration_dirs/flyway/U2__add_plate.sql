ALTER TABLE flyway_cars DROP COLUMN plate;
