DROP INDEX sqlx_users_email_lower;
DROP INDEX sqlx_orders_user;
