DROP TABLE sqlx_orders;
