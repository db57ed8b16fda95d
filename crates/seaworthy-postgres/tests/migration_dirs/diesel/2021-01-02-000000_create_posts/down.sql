DROP TABLE diesel_posts;
