//! madoguchi (窓口): a municipal e-application backend.
//!
//! Procedures are declared as files under `forms/`; residents prove who they are with the My
//! Number Card; applications are stored, routed to a division's queue, processed to a decision,
//! and everyone is told by email. `main.rs` only parses the command line: everything lives here
//! so the tests build the same application.

pub mod calendar;
pub mod cli;
pub mod client_address;
pub mod config;
pub mod db;
pub mod error;
pub mod forms;
pub mod identity;
pub mod input;
#[cfg(test)]
mod layers;
pub mod messages;
pub mod notify;
pub mod payments;
pub mod queues;
pub mod routes;
pub mod startup;
pub mod state;
pub mod statistics;
pub mod statistics_breakdown;
pub mod storage;
pub mod submissions;
pub mod telemetry;
pub mod web;
pub mod worker;
