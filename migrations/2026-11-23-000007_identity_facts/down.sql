DROP TABLE submission_identity_facts;
DROP TABLE session_facts;
