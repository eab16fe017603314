//! The calendar a service holds while it runs: every deadline computation reads it, and the
//! follower of the registry's calendar changes (holidays and closures published through the
//! API) updates it. Cloning shares the same calendar.

use std::sync::{Arc, RwLock};

use crate::Calendar;

#[derive(Clone, Debug)]
pub struct SharedCalendar(Arc<RwLock<Calendar>>);

impl SharedCalendar {
    pub fn new(calendar: Calendar) -> Self {
        Self(Arc::new(RwLock::new(calendar)))
    }

    /// The shipped starting data (the official holidays of 1404 and 1405).
    pub fn shipped() -> Self {
        Self::new(Calendar::shipped())
    }

    /// What the registry starts from ([`Calendar::suite`]): what a service that follows
    /// the registry's calendar starts its own from.
    pub fn suite() -> Self {
        Self::new(Calendar::suite())
    }

    pub fn read<R>(&self, f: impl FnOnce(&Calendar) -> R) -> R {
        // A panic while holding the lock cannot leave a half-made calendar: every update is
        // one call on `Calendar`, so the poisoned value is still a whole calendar.
        let guard = self.0.read().unwrap_or_else(|p| p.into_inner());
        f(&guard)
    }

    pub fn update<R>(&self, f: impl FnOnce(&mut Calendar) -> R) -> R {
        let mut guard = self.0.write().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}

impl Default for SharedCalendar {
    fn default() -> Self {
        Self::shipped()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_one_calendar() {
        let a = SharedCalendar::new(Calendar::new());
        let b = a.clone();
        assert!(!b.read(|c| c.knows_holidays_of(1404)));
        a.update(|c| {
            c.add_holiday_year(
                1404,
                Calendar::shipped().holidays().cloned().collect::<Vec<_>>(),
            )
        });
        assert!(b.read(|c| c.knows_holidays_of(1404)));
    }
}
