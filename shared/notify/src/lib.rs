//! Notifications people act on, the part every service of the suite shares
//! (`domain.md`, "Notifications"): each service keeps its notifications in its own
//! database, written in the transaction of the change that causes them.
//!
//! - [`model`]: a notification as a service asks for it ([`NewNotification`]: recipient,
//!   resource and its short [`Reference`], the [`Office`] that caused it, a fixed
//!   [`Template`] with its dates, the [`Delivery`]) and the [`Channel`]s and [`State`]s;
//! - [`content`]: the content rules (an SMS carries no link and no personal data beyond
//!   the recipient's own name; no e-mail carries a national code), checked when a
//!   notification is built;
//! - [`store`]: [`enqueue`] in the caller's [`WriteTxn`](mosharekat_platform::db::WriteTxn)
//!   (a rolled-back change notifies nobody), with a gap-free sequence;
//! - [`reminders`]: reminders of deadlines (7 days, 1 day before, passed) scheduled,
//!   moved with the deadline, cancelled, and fired once each ([`reminders::fire_due`],
//!   and the loop a service spawns);
//! - [`api`]: `mosharekat.common.v1.NotificationService` ([`NotificationApi`]): the
//!   gateways' resumable stream and acknowledgements, the people's lists;
//! - [`email`]: the e-mail channel over SMTP, with retries and capped exponential backoff;
//! - [`migrations`]: the tables, which each service adds to its migrator after the
//!   platform's.
//!
//! Wiring a service: add `migrations::m20261202_000001_notifications::Migration` to its
//! migrator; call [`enqueue`] (or [`reminders::schedule`]) with `Saved::txn()` in step 6
//! of the change path; serve `NotificationApi::new(db).into_server()`; spawn
//! [`reminders::spawn_reminder_loop`] and, with SMTP configured ([`email::SmtpArgs`] on the
//! command line), [`email::spawn_email_delivery`].
#![forbid(unsafe_code)]

pub mod api;
pub mod content;
pub mod email;
pub mod migrations;
pub mod model;
pub mod reminders;
pub mod store;

pub use api::NotificationApi;
pub use content::ContentError;
pub use model::{
    Channel, Delivery, NewNotification, NoticeDate, Office, Recipient, Reference, Sequence, State,
    Template, Topic,
};
pub use reminders::{Addressee, Offset, ReminderPlan, STANDARD_OFFSETS};
pub use store::{Notification, enqueue, enqueue_all};
