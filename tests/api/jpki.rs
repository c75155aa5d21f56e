//! JPKI login and card signatures (see src/identity/jpki.rs).
