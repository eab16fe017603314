//! Persian text and Iranian identifiers, as the people of this domain write them.
//!
//! - [`text`]: normalisation for storage (NFKC, Arabic ي/ك folded to Persian ی/ک, whitespace
//!   collapsed, ZWNJ kept), folding for search (stored text and typed queries alike), and
//!   refusal of control and bidi characters.
//! - [`digits`]: Persian (۰–۹) and Arabic-Indic (٠–٩) digits to ASCII, and numbers written
//!   for a Persian reader (Persian digits, `٫` decimals, `٬` thousands, `٪`).
//! - [`ids`]: the national code (کد ملی) and the legal-entity national ID (شناسه ملی) with
//!   their check digits, and masking for logs.
//! - [`jalali`]: Solar Hijri dates in Tehran time, for people reading minutes and messages.
#![forbid(unsafe_code)]

pub mod digits;
pub mod ids;
pub mod jalali;
pub mod text;

pub use ids::{IdError, LegalEntityId, NationalCode, mask};
pub use jalali::JalaliDate;
pub use text::{TextError, fold_for_search, normalize_name, normalize_text, search_key};
