CREATE TABLE sqlx_orders (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES sqlx_users (id)
);
INSERT INTO sqlx_users (email) VALUES ('ada@example.com');
