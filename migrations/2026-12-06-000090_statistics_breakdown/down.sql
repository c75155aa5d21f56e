DROP TABLE statistics_breakdown_monthly;
ALTER TABLE submissions
    DROP CONSTRAINT submissions_one_breakdown,
    DROP COLUMN age_band,
    DROP COLUMN district_code;
