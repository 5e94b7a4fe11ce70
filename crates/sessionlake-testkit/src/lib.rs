//! sessionlake's test kit: a seeded, Amplitude-like event-lake generator ([`lake`]) and the same
//! lake as an app that reports its own session lengths logs it ([`app_lake`]), small random
//! event sets for property tests ([`random_events`]), the same events as an Amplitude Export API
//! export ([`amplitude_export`]) and a naive, independent reference implementation of the
//! session semantics ([`reference`]) to test the engine against.

pub mod amplitude_export;
pub mod app_lake;
pub mod lake;
pub mod random_events;
pub mod reference;
pub mod s3;
