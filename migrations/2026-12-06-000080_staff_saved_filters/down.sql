DROP TABLE staff_saved_filters;
