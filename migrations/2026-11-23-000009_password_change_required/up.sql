-- A password an admin chose for someone is known to two people: it is replaced at first use
-- before the account may do anything else.
ALTER TABLE staff ADD COLUMN password_change_required BOOLEAN NOT NULL DEFAULT false;
