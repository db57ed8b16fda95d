INSERT INTO flyway_cars VALUES (1, 'blue'), (2, 'red');
