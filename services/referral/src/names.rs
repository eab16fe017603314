//! Typed resource names: `filings/{id}`, `referrals/{id}`, `institutions/{id}`, each
//! parsed with every segment checked, so that an id of one collection is never taken for
//! another's.

use std::fmt;

use mosharekat_platform::error::ApiError;
use serde::{Deserialize, Serialize};

/// An id as the suite writes them: 1 to 64 ASCII letters, digits and `-`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

macro_rules! resource_id {
    ($(#[$doc:meta])* $name:ident, $collection:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const COLLECTION: &'static str = $collection;

            /// `{collection}/{id}` → the id; INVALID_ARGUMENT naming `field` otherwise.
            pub fn parse(name: &str, field: &str) -> Result<Self, ApiError> {
                Self::from_name(name).ok_or_else(|| {
                    ApiError::invalid(field, concat!("must be ", $collection, "/{id}"))
                })
            }

            /// `{collection}/{id}` → the id, if it is one.
            pub fn from_name(name: &str) -> Option<Self> {
                name.strip_prefix(concat!($collection, "/"))
                    .and_then(Self::from_id)
            }

            /// A bare id, if it is a valid one.
            pub fn from_id(id: &str) -> Option<Self> {
                valid_id(id).then(|| Self(id.to_owned()))
            }

            /// The bare id, as the tables key it.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The resource name, `{collection}/{id}`.
            pub fn name(&self) -> String {
                format!(concat!($collection, "/{}"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($collection, "/{}"), self.0)
            }
        }
    };
}

resource_id!(
    /// A filing: `filings/{id}`.
    FilingId,
    "filings"
);
resource_id!(
    /// A referral: `referrals/{id}`.
    ReferralId,
    "referrals"
);
resource_id!(
    /// An institution of the registry: `institutions/{id}`.
    InstitutionId,
    "institutions"
);

impl FilingId {
    /// A new id, ordered by creation time (UUID v7).
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }
}

impl ReferralId {
    /// A new id, ordered by creation time (UUID v7).
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_segment_is_checked() {
        assert_eq!(
            FilingId::parse("filings/abc", "name").unwrap().as_str(),
            "abc"
        );
        assert_eq!(FilingId::from_id("abc").unwrap().name(), "filings/abc");
        for bad in [
            "filings/",
            "referrals/abc",
            "filingsabc",
            "filings/a/b",
            "filings/a b",
            "",
        ] {
            assert!(FilingId::parse(bad, "name").is_err(), "{bad}");
        }
        assert!(ReferralId::from_name("filings/abc").is_none());
        assert_eq!(
            InstitutionId::from_name("institutions/x-1")
                .unwrap()
                .to_string(),
            "institutions/x-1"
        );
    }
}
