//! The meeting service's resource names (AIP-122), parsed once at the edge with every
//! segment checked. A child's name carries its working group, and [`crate::store`] loads a
//! child only under that group: a member, meeting or resolution named under another group
//! is NOT_FOUND, exactly as if it did not exist.

use std::fmt;
use std::marker::PhantomData;

use mosharekat_platform::error::ApiError;

/// A resource id: what the service issues (UUIDs), or close to it.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// `working-groups/{id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupName {
    id: String,
}

impl GroupName {
    pub fn parse(name: &str, field: &str) -> Result<Self, ApiError> {
        match name.strip_prefix("working-groups/") {
            Some(id) if valid_id(id) => Ok(Self { id: id.to_owned() }),
            _ => Err(ApiError::invalid(field, "must be working-groups/{id}")),
        }
    }

    /// The name of a group whose id the service issued.
    pub fn new(id: String) -> Self {
        Self { id }
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Display for GroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "working-groups/{}", self.id)
    }
}

/// `working-groups/{wg}/{collection}/{id}` → (wg, id), both segments checked.
fn parse_child(name: &str, collection: &str, field: &str) -> Result<(GroupName, String), ApiError> {
    let bad = || {
        ApiError::invalid(
            field,
            format!("must be working-groups/{{id}}/{collection}/{{id}}"),
        )
    };
    let rest = name.strip_prefix("working-groups/").ok_or_else(bad)?;
    let (wg, id) = rest
        .split_once(&format!("/{collection}/"))
        .ok_or_else(bad)?;
    if valid_id(wg) && valid_id(id) {
        Ok((GroupName::new(wg.to_owned()), id.to_owned()))
    } else {
        Err(bad())
    }
}

/// A working group's child whose id the service issued:
/// `working-groups/{wg}/{collection}/{id}`, one type per collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildName<C> {
    group: GroupName,
    id: String,
    collection: PhantomData<C>,
}

/// The collection a [`ChildName`] is in.
pub trait Collection {
    /// Its segment in a name (`members`).
    const SEGMENT: &'static str;
}

/// `working-groups/{wg}/members/{id}`.
pub type MemberName = ChildName<MemberCollection>;

/// The members' collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberCollection {}

impl Collection for MemberCollection {
    const SEGMENT: &'static str = "members";
}

/// `working-groups/{wg}/resolutions/{id}`.
pub type ResolutionName = ChildName<ResolutionCollection>;

/// The resolutions' collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolutionCollection {}

impl Collection for ResolutionCollection {
    const SEGMENT: &'static str = "resolutions";
}

impl<C: Collection> ChildName<C> {
    /// The name of a child whose id the service issued.
    pub fn new(group: GroupName, id: String) -> Self {
        Self {
            group,
            id,
            collection: PhantomData,
        }
    }

    pub fn parse(name: &str, field: &str) -> Result<Self, ApiError> {
        let (group, id) = parse_child(name, C::SEGMENT, field)?;
        Ok(Self::new(group, id))
    }

    pub fn group(&self) -> &GroupName {
        &self.group
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

impl<C: Collection> fmt::Display for ChildName<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.group, C::SEGMENT, self.id)
    }
}

/// `working-groups/{wg}/meetings/{number}`, numbered from 1 per working group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeetingName {
    group: GroupName,
    number: i32,
}

impl MeetingName {
    pub fn parse(name: &str, field: &str) -> Result<Self, ApiError> {
        let (group, n) = parse_child(name, "meetings", field)?;
        // One spelling per meeting ("1", not "01" or "+1"), so the name a NOT_FOUND
        // gives back is the name as sent.
        let canonical = n.bytes().all(|b| b.is_ascii_digit()) && !n.starts_with('0');
        match n.parse::<i32>() {
            Ok(number) if canonical && number > 0 => Ok(Self { group, number }),
            _ => Err(ApiError::invalid(
                field,
                "the meeting number must be a positive whole number",
            )),
        }
    }

    pub fn new(group: GroupName, number: i32) -> Self {
        Self { group, number }
    }

    pub fn group(&self) -> &GroupName {
        &self.group
    }

    pub fn number(&self) -> i32 {
        self.number
    }
}

impl fmt::Display for MeetingName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/meetings/{}", self.group, self.number)
    }
}

// Stored as the name's text, and read back through the same checks.
macro_rules! name_as_text {
    ($($t:ty),*) => {$(
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                <$t>::parse(&s, "name").map_err(|_| serde::de::Error::custom(format!("{s:?} is not a {}", stringify!($t))))
            }
        }
    )*};
}
name_as_text!(GroupName, MemberName, MeetingName, ResolutionName);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_segment_is_checked_and_the_name_round_trips() {
        for ok in [
            "working-groups/a-1/members/b",
            "working-groups/a/members/0192-ab",
        ] {
            assert_eq!(MemberName::parse(ok, "f").unwrap().to_string(), ok);
        }
        for bad in [
            "",
            "working-groups/a",
            "working-groups//members/b",
            "working-groups/a/members/",
            "working-groups/a/members/b/members/c",
            "working-groups/a/resolutions/b",
            "groups/a/members/b",
            "working-groups/a b/members/c",
        ] {
            assert!(MemberName::parse(bad, "f").is_err(), "{bad:?}");
        }
        let r = ResolutionName::parse("working-groups/a/resolutions/r", "f").unwrap();
        assert_eq!((r.group().id(), r.id()), ("a", "r"));
        assert!(ResolutionName::parse("working-groups/a/members/r", "f").is_err());
        assert_eq!(
            GroupName::parse("working-groups/g", "f")
                .unwrap()
                .to_string(),
            "working-groups/g"
        );
        assert!(GroupName::parse("working-groups/g/x", "f").is_err());
    }

    #[test]
    fn a_meeting_number_has_one_spelling() {
        let m = MeetingName::parse("working-groups/g/meetings/12", "f").unwrap();
        assert_eq!((m.group().id(), m.number()), ("g", 12));
        assert_eq!(m.to_string(), "working-groups/g/meetings/12");
        for bad in ["0", "01", "+1", "-1", "abc", "99999999999", ""] {
            assert!(
                MeetingName::parse(&format!("working-groups/g/meetings/{bad}"), "f").is_err(),
                "{bad:?}"
            );
        }
    }
}
