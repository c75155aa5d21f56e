-- Staff password attempts per client address, shared by every app server (it was in each
-- process's memory, so N servers allowed N times the attempts). One row per address holds the
-- GCRA's next theoretical arrival time; rows whose time has passed carry no state and are purged.
CREATE TABLE address_throttle (
    address text PRIMARY KEY,
    allowed_from timestamptz NOT NULL
);
