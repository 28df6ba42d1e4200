//! The web side: the read-only catalogue UI and the pieces of HTTP it needs.

pub mod range;
pub mod ui;
