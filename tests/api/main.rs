//! All integration tests, in one binary (linking is the slow part of a Rust build).

mod catalog;
mod database;
mod forms;
mod helpers;
mod http_edge;
