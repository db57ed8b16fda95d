-- Flyway runs this outside a transaction by itself: no marker needed.
CREATE INDEX CONCURRENTLY flyway_cars_color ON flyway_cars (color);
CREATE INDEX CONCURRENTLY flyway_cars_plate ON flyway_cars (plate);
