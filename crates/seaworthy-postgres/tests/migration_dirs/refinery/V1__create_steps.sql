CREATE TABLE refinery_steps (id int GENERATED ALWAYS AS IDENTITY, n int NOT NULL);
INSERT INTO refinery_steps (n) VALUES (1);
