DROP FUNCTION statistics_add_histograms(BIGINT[], BIGINT[]);
DROP TABLE statistics_counter_counts;
DROP TABLE statistics_daily;
DROP TABLE statistics_monthly;
DROP TABLE statistics_watermark;
