CREATE TABLE diesel_users (
    id serial PRIMARY KEY,
    name varchar NOT NULL
);
