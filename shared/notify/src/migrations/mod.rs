//! The notification tables, which each service adds to its migrator after the platform's.

pub mod m20261202_000001_notifications;
pub mod m20261223_000001_reminders_by_key;
