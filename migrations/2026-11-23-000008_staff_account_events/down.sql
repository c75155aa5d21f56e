DROP TABLE staff_account_events;
