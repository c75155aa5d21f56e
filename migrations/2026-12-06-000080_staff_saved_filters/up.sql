-- A clerk's saved filters of a queue list: a name and the list's query string (the filter form's
-- fields only). Private to the clerk who saved them; gone with the account.
CREATE TABLE staff_saved_filters (
    id UUID PRIMARY KEY,
    staff_id UUID NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    queue_id TEXT NOT NULL,
    name TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 60),
    query TEXT NOT NULL CHECK (char_length(query) <= 2000),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Also the index of a queue page's lookup (one clerk, one queue).
    UNIQUE (staff_id, queue_id, name)
);
