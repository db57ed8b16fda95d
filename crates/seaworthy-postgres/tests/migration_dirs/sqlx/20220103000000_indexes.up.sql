-- no-transaction
CREATE INDEX CONCURRENTLY sqlx_orders_user ON sqlx_orders (user_id);
CREATE INDEX CONCURRENTLY sqlx_users_email_lower ON sqlx_users (lower(email));
