INSERT INTO refinery_steps (n) VALUES (8);
