//! One module per HTTP resource.

pub mod admin;
pub mod costs;
pub mod dashboard;
pub mod events;
pub mod health;
pub mod operators;
pub mod progress;
pub mod training;
