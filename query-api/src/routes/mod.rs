//! One module per HTTP resource.

pub mod admin;
pub mod aggregator;
pub mod costs;
pub mod dashboard;
pub mod events;
pub mod health;
pub mod operators;
pub mod progress;
pub mod reports;
pub mod training;
