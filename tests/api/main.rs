//! All integration tests, in one binary (linking is the slow part of a Rust build).

// Tests state their expectations with expect(); a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth;
mod bad_input;
mod catalog;
mod contract;
mod database;
mod docs_commands;
mod fixtures;
mod forms;
mod forms_mistakes;
mod helpers;
mod http_edge;
mod jpki;
mod logic_engines;
mod notify;
mod object_storage;
mod oidc;
mod page_client;
mod payments;
mod portal;
mod portal_flow;
mod portal_pages;
mod reliability;
mod requesters;
mod scale_out;
mod staff;
mod staff_console;
mod staff_security;
mod statistics;
mod submissions;
mod trust;
