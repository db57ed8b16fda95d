-- migrate:up
CREATE TABLE dbmate_accounts (
    id serial PRIMARY KEY,
    name text NOT NULL
);

-- migrate:down
DROP TABLE dbmate_accounts;
