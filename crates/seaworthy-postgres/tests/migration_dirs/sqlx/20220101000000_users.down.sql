DROP TABLE sqlx_users;
