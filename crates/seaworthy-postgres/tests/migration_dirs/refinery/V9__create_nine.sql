CREATE TABLE refinery_nine (id int PRIMARY KEY);
INSERT INTO refinery_steps (n) VALUES (9);
