//! Staff accounts.
