DROP INDEX submissions_open_page_idx;
