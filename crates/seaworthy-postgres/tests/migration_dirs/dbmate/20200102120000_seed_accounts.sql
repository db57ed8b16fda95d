-- migrate:up
INSERT INTO dbmate_accounts (name) VALUES ('ada'), ('grace');

-- migrate:down
DELETE FROM dbmate_accounts;
