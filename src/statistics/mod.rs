//! The usage dashboard and open data: how the city's online counter is doing, from madoguchi's
//! own application events, as aggregates only.
//!
//! - [`rollup`]: the worker folds `submission_events` into monthly and daily rollups past a
//!   watermark (processing time as a [`histogram`] of business days, so medians merge exactly);
//! - [`report`]: the rollups read into one report, counts suppressed by [`suppression`], kept
//!   by [`cache`] until the data changes;
//! - [`svg`]: its charts, [`open_data`]: its CSV files, [`definitions`]: what every measure means;
//! - [`counter`]: the counter (窓口) counts staff enter each month.
//!
//! The city's opt-in district or age-band breakdown is derived at submit, apart
//! ([`crate::statistics_breakdown`]), so that submitting does not depend on the statistics.

pub mod cache;
pub mod counter;
pub mod definitions;
pub mod histogram;
pub mod open_data;
pub mod report;
pub mod rollup;
pub mod suppression;
pub mod svg;
