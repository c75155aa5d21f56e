DELETE FROM staff_account_events WHERE action = 'password_reset';
ALTER TABLE staff_account_events DROP CONSTRAINT staff_account_events_action_check;
ALTER TABLE staff_account_events ADD CONSTRAINT staff_account_events_action_check
    CHECK (action IN ('created', 'role_set', 'removed_from_division', 'deactivated',
        'reactivated', 'password_changed', 'linked_to_provider'));
ALTER TABLE staff DROP COLUMN password_change_required;
