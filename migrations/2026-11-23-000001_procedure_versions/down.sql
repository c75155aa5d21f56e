DROP TABLE procedure_versions;
