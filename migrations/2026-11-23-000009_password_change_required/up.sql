-- A password an admin chose for someone (a new account, or a reset) is known to two people: it
-- is replaced at first use before the account may do anything else.
ALTER TABLE staff ADD COLUMN password_change_required BOOLEAN NOT NULL DEFAULT false;

-- An admin resetting a password is on the account's audit trail too.
ALTER TABLE staff_account_events DROP CONSTRAINT staff_account_events_action_check;
ALTER TABLE staff_account_events ADD CONSTRAINT staff_account_events_action_check
    CHECK (action IN ('created', 'role_set', 'removed_from_division', 'deactivated',
        'reactivated', 'password_changed', 'password_reset', 'linked_to_provider'));
