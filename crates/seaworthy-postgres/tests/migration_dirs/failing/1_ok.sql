CREATE TABLE failing_ok (id int);
