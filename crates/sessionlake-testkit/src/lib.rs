//! sessionlake's test kit: a seeded, Amplitude-like event-lake generator ([`lake`]), small random
//! event sets for property tests ([`random_events`]) and a naive, independent reference
//! implementation of the session semantics ([`reference`]) to test the engine against.

pub mod lake;
pub mod random_events;
pub mod reference;
