ALTER TABLE staff DROP COLUMN password_change_required;
