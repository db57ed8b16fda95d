INSERT INTO failing_ok VALUES (1);

SELEC broken FROM failing_ok;
