DROP TABLE refresh_tokens;
DROP TABLE staff_memberships;
DROP TABLE staff;
DROP TABLE auth_challenges;
DROP TABLE residents;
