CREATE TABLE refinery_ten (nine_id int REFERENCES refinery_nine (id));
INSERT INTO refinery_steps (n) VALUES (10);
