//! The suite's gRPC API, generated from `proto/` at build time.
//!
//! One module per proto package; [`FILE_DESCRIPTOR_SET`] is what server reflection serves.
#![forbid(unsafe_code)]
#![allow(clippy::large_enum_variant, clippy::doc_lazy_continuation)]

use std::fmt;

pub mod codec;
pub mod deadline;

/// Every file of `proto/`, encoded, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/mosharekat_descriptor.bin"));

pub mod common {
    pub mod v1 {
        tonic::include_proto!("mosharekat.common.v1");
    }
}

pub mod registry {
    pub mod v1 {
        tonic::include_proto!("mosharekat.registry.v1");
    }
}

pub mod referral {
    pub mod v1 {
        tonic::include_proto!("mosharekat.referral.v1");
    }
}

pub mod meeting {
    pub mod v1 {
        tonic::include_proto!("mosharekat.meeting.v1");
    }
}

fn masked(code: &str) -> String {
    let n = code.chars().count();
    let keep = n.saturating_sub(4);
    code.chars()
        .enumerate()
        .map(|(i, c)| if i < keep { '*' } else { c })
        .collect()
}

// prost's derived Debug would print national codes whole into logs and spans.
impl fmt::Debug for registry::v1::Representative {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Representative")
            .field("full_name", &self.full_name)
            .field("national_code", &masked(&self.national_code))
            .field("role", &self.role)
            .field("phone", &self.phone)
            .finish()
    }
}

impl fmt::Debug for common::v1::Party {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A sealed party's name is as confidential as a national code.
        let name = if self.sealed {
            "(sealed)"
        } else {
            self.full_name.as_str()
        };
        f.debug_struct("Party")
            .field("full_name", &name)
            .field("national_code", &masked(&self.national_code))
            .field("role", &self.role)
            .field("minor", &self.minor)
            .field("legally_incapacitated", &self.legally_incapacitated)
            .field("guardian_is_accused", &self.guardian_is_accused)
            .field("sealed", &self.sealed)
            .finish()
    }
}

impl fmt::Debug for meeting::v1::Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Member")
            .field("name", &self.name)
            .field("full_name", &self.full_name)
            .field("national_code", &masked(&self.national_code))
            .field("seat", &self.seat)
            .field("position", &self.position)
            .field("institution", &self.institution)
            .field("voting", &self.voting)
            .field("vacant", &self.vacant)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::registry::v1::Representative;

    #[test]
    fn representative_debug_masks_the_national_code() {
        let r = Representative {
            full_name: "x".into(),
            national_code: "0076229645".into(),
            ..Default::default()
        };
        let s = format!("{r:?}");
        assert!(!s.contains("0076229645"), "{s}");
        assert!(s.contains("******9645"), "{s}");
        let p = super::common::v1::Party {
            national_code: "0076229645".into(),
            ..Default::default()
        };
        assert!(!format!("{p:?}").contains("0076229645"));
        let sealed = super::common::v1::Party {
            full_name: "مریم".into(),
            sealed: true,
            ..Default::default()
        };
        assert!(!format!("{sealed:?}").contains("مریم"));
    }
}
