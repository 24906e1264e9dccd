//! One module per command.

pub mod analytics;
pub mod bench;
pub mod import;
pub mod keys;
pub mod replay;
pub mod serve;
