CREATE OR REPLACE VIEW flyway_blue_cars AS SELECT id, plate FROM flyway_cars WHERE color = 'blue';
