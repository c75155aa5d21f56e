-- My Number reveals per staff member in the last hour are counted at every reveal (the per-staff
-- limit holds across servers because it is counted here, not in memory).
CREATE INDEX access_log_reveals_by_staff_idx ON access_log (staff_id, created_at)
    WHERE action = 'reveal_my_number';
