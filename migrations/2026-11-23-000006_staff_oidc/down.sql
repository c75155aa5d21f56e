ALTER TABLE staff
    DROP CONSTRAINT staff_oidc_identity_whole,
    DROP CONSTRAINT staff_oidc_identity_key,
    DROP COLUMN oidc_subject,
    DROP COLUMN oidc_issuer;
UPDATE staff SET password_hash = '!' WHERE password_hash IS NULL;
ALTER TABLE staff ALTER COLUMN password_hash SET NOT NULL;
