CREATE TABLE diesel_posts (
    id serial PRIMARY KEY,
    user_id integer NOT NULL REFERENCES diesel_users (id),
    title varchar NOT NULL,
    updated_at timestamp NOT NULL DEFAULT current_timestamp
);
SELECT diesel_manage_updated_at('diesel_posts');
