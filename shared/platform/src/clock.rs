//! The one source of the time of day for application code. Services read it through the
//! [`Clock`] their [`crate::db::Db`] carries, so that tests of expiry, deadlines and
//! reminders move time instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};

/// The time of day: the system's, or (in tests) one that moves only when told.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// Microseconds since the Unix epoch while the clock is manual.
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self { manual: None }
    }

    /// A clock standing at `start` until it is moved with [`Clock::advance`] or
    /// [`Clock::set`]. Every clone shares the same time.
    #[cfg(any(test, feature = "test-util"))]
    pub fn manual(start: DateTime<Utc>) -> Self {
        Self {
            manual: Some(Arc::new(AtomicI64::new(start.timestamp_micros()))),
        }
    }

    /// Moves a manual clock forward; a system clock cannot be moved (a test bug).
    #[cfg(any(test, feature = "test-util"))]
    pub fn advance(&self, by: chrono::Duration) {
        let m = self
            .manual
            .as_ref()
            .expect("only a manual clock can be moved");
        m.fetch_add(by.num_microseconds().unwrap_or(i64::MAX), Ordering::SeqCst);
    }

    /// Sets a manual clock.
    #[cfg(any(test, feature = "test-util"))]
    pub fn set(&self, to: DateTime<Utc>) {
        let m = self
            .manual
            .as_ref()
            .expect("only a manual clock can be set");
        m.store(to.timestamp_micros(), Ordering::SeqCst);
    }

    /// Now, in microseconds since the Unix epoch (the stored form).
    pub fn now_micros(&self) -> i64 {
        match &self.manual {
            Some(m) => m.load(Ordering::SeqCst),
            None => Utc::now().timestamp_micros(),
        }
    }

    /// Now.
    pub fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.now_micros()).unwrap_or_default()
    }

    /// Whether this clock moves only when told (tests).
    pub fn is_manual(&self) -> bool {
        self.manual.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_clones_share_it() {
        let start = DateTime::parse_from_rfc3339("2026-03-20T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let c = Clock::manual(start);
        let d = c.clone();
        assert_eq!(c.now(), start);
        c.advance(chrono::Duration::days(3));
        assert_eq!(d.now(), start + chrono::Duration::days(3));
        d.set(start);
        assert_eq!(c.now_micros(), start.timestamp_micros());
        assert!(c.is_manual());
    }

    #[test]
    fn the_system_clock_follows_the_system() {
        let c = Clock::system();
        let before = Utc::now().timestamp_micros();
        let now = c.now_micros();
        assert!(now >= before && now - before < 60_000_000);
        assert!(!c.is_manual());
    }
}
