//! JPKI (My Number Card) provider.
