CREATE TABLE sqlx_users (
    id bigserial PRIMARY KEY,
    email text NOT NULL UNIQUE
);
