//! Typed ids and resource names: `institutions/{id}` and
//! `institutions/{institution}/licences/{id}`, every segment checked. A licence is found
//! only under the institution its name gives, so a licence of another institution is
//! `NOT_FOUND`, as if it did not exist.

use std::fmt;
use std::str::FromStr;

use mosharekat_platform::error::ApiError;

/// A resource id: what the suite issues (UUIDs), or close to it.
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// A new id (UUID v7: ordered by creation, so keyset pages follow it).
            pub fn generate() -> Self {
                Self(uuid::Uuid::now_v7().to_string())
            }

            /// An id as the registry stored it (checked when it was issued).
            pub(crate) fn stored(id: String) -> Self {
                Self(id)
            }

            /// An id given by a caller; `None` unless it has the form of one.
            pub fn parse(id: &str) -> Option<Self> {
                valid_id(id).then(|| Self(id.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// The id segment of `institutions/{id}`.
    InstitutionId
);
id_type!(
    /// The id segment of `institutions/{institution}/licences/{id}`.
    LicenceId
);

/// Why a resource name does not parse: the form it must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be {0}")]
pub struct NameError(&'static str);

/// `institutions/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstitutionName(pub InstitutionId);

impl InstitutionName {
    pub fn id(&self) -> &InstitutionId {
        &self.0
    }
}

impl FromStr for InstitutionName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        s.strip_prefix("institutions/")
            .and_then(InstitutionId::parse)
            .map(Self)
            .ok_or(NameError("institutions/{id}"))
    }
}

impl fmt::Display for InstitutionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "institutions/{}", self.0)
    }
}

/// `institutions/{institution}/licences/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LicenceName {
    pub institution: InstitutionId,
    pub id: LicenceId,
}

impl LicenceName {
    pub fn parent(&self) -> InstitutionName {
        InstitutionName(self.institution.clone())
    }
}

impl FromStr for LicenceName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        let bad = NameError("institutions/{id}/licences/{id}");
        let rest = s.strip_prefix("institutions/").ok_or(bad)?;
        let (inst, lic) = rest.split_once("/licences/").ok_or(bad)?;
        match (InstitutionId::parse(inst), LicenceId::parse(lic)) {
            (Some(institution), Some(id)) => Ok(Self { institution, id }),
            _ => Err(bad),
        }
    }
}

impl fmt::Display for LicenceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "institutions/{}/licences/{}", self.institution, self.id)
    }
}

/// Parses the name in request field `field`, refusing it as `INVALID_ARGUMENT` naming it.
pub fn parse<T: FromStr<Err = NameError>>(raw: &str, field: &str) -> Result<T, ApiError> {
    raw.parse()
        .map_err(|e: NameError| ApiError::invalid(field, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_print_back() {
        let n: InstitutionName = "institutions/abc-1".parse().unwrap();
        assert_eq!(n.id().as_str(), "abc-1");
        assert_eq!(n.to_string(), "institutions/abc-1");
        for bad in [
            "",
            "institutions/",
            "institution/x",
            "institutions/a/b",
            "institutions/x y",
            "institutions/' OR 1=1",
        ] {
            assert!(bad.parse::<InstitutionName>().is_err(), "{bad}");
        }
        let l: LicenceName = "institutions/a/licences/b".parse().unwrap();
        assert_eq!((l.institution.as_str(), l.id.as_str()), ("a", "b"));
        assert_eq!(l.to_string(), "institutions/a/licences/b");
        assert_eq!(l.parent().to_string(), "institutions/a");
        for bad in [
            "institutions/a/licences/",
            "institutions//licences/b",
            "institutions/a/licences/b/c",
            "institutions/a/b",
        ] {
            assert!(bad.parse::<LicenceName>().is_err(), "{bad}");
        }
        let e = parse::<LicenceName>("x", "name").unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
    }
}
