-- Who changed which staff account, how and when: created, given a role, taken out of a division,
-- deactivated, reactivated, password changed, linked to the city's IdP. Append-only, written in
-- the transaction of the change. `actor_id` is NULL for the command line.
CREATE TABLE staff_account_events (
    id BIGSERIAL PRIMARY KEY,
    staff_id UUID NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    actor_id UUID REFERENCES staff (id),
    action TEXT NOT NULL CHECK (action IN ('created', 'role_set', 'removed_from_division',
        'deactivated', 'reactivated', 'password_changed', 'linked_to_provider')),
    division TEXT,
    role TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX staff_account_events_staff_id_idx ON staff_account_events (staff_id, id);
