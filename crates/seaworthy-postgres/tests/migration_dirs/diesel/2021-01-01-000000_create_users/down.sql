DROP TABLE diesel_users;
