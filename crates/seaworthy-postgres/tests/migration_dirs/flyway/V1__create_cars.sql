CREATE TABLE flyway_cars (id int PRIMARY KEY, color text NOT NULL);
