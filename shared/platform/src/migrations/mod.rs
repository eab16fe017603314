//! The platform's own tables, which every service's migrator runs first.

pub mod m20261129_000001_platform;
pub mod m20261201_000001_idempotency_per_caller;
pub mod m20261201_000002_write_probe;
pub mod m20261202_000001_event_stalls;
