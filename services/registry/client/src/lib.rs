//! The registry's contract as the other services use it, owned by the registry:
//!
//! - [`peer`]: the typed client ([`RegistryPeer`]) with deadlines, retries and the
//!   service token;
//! - [`eligibility`]: the eligibility reasons' tokens and Persian texts, written once;
//! - [`events`]: following the licence event stream durably, exactly once;
//! - [`calendar`]: following the registry's legal calendar into the caller's
//!   `SharedCalendar`, and handing each late publication to the caller.

pub mod calendar;
pub mod eligibility;
pub mod events;
pub mod peer;

pub use eligibility::{reason_token, require_eligible};
pub use peer::{REGISTRY_SERVICE, RegistryPeer};
