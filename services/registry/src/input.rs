//! Parsing requests at the edge: every field checked, every bad one named, and what passes
//! is normalised (Persian letters, digits, white space) before anything is stored.

use mosharekat_api::common::v1::ActivityArea;
use mosharekat_api::registry::v1 as pb;
use mosharekat_persian::{
    LegalEntityId, NationalCode, digits::to_ascii_digits, normalize_name, normalize_text,
    search_key,
};
use mosharekat_platform::error::{ApiError, Violations};
use serde::{Deserialize, Serialize};

pub const MAX_NAME: usize = 200;
pub const MAX_SHORT: usize = 100;
pub const MAX_TEXT: usize = 2000;
pub const MAX_QUERY: usize = 200;
pub const MAX_REPRESENTATIVES: usize = 20;

/// A resource id: what the suite issues (UUIDs), or close to it.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// `institutions/{id}` → id.
pub fn parse_institution_name(name: &str, field: &str) -> Result<String, ApiError> {
    match name.strip_prefix("institutions/") {
        Some(id) if valid_id(id) => Ok(id.to_owned()),
        _ => Err(ApiError::invalid(field, "must be institutions/{id}")),
    }
}

/// `institutions/{id}/licences/{id}` → (institution id, licence id).
pub fn parse_licence_name(name: &str, field: &str) -> Result<(String, String), ApiError> {
    let bad = || ApiError::invalid(field, "must be institutions/{id}/licences/{id}");
    let rest = name.strip_prefix("institutions/").ok_or_else(bad)?;
    let (inst, lic) = rest.split_once("/licences/").ok_or_else(bad)?;
    if valid_id(inst) && valid_id(lic) {
        Ok((inst.to_owned(), lic.to_owned()))
    } else {
        Err(bad())
    }
}

pub fn institution_name(id: &str) -> String {
    format!("institutions/{id}")
}

pub fn licence_name(institution_id: &str, id: &str) -> String {
    format!("institutions/{institution_id}/licences/{id}")
}

/// A representative as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Representative {
    pub full_name: String,
    pub national_code: String,
    pub role: String,
    pub phone: String,
}

/// Every editable field of an institution, checked and normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstitutionFields {
    pub display_name: String,
    pub kind: i32,
    pub national_id: String,
    pub registration_number: String,
    pub registering_authority: String,
    pub province: String,
    pub city: String,
    pub address: String,
    pub phone: String,
    pub email: String,
    pub activity_areas: Vec<i32>,
    pub representatives: Vec<Representative>,
}

/// The fields `UpdateInstitution` may change.
pub const UPDATABLE: &[&str] = &[
    "display_name",
    "kind",
    "registration_number",
    "registering_authority",
    "province",
    "city",
    "address",
    "phone",
    "email",
    "activity_areas",
    "representatives",
];

fn name(v: &mut Violations, field: String, raw: &str, max: usize) -> String {
    v.check(field, normalize_name(raw, max)).unwrap_or_default()
}

fn phone(v: &mut Violations, field: String, raw: &str) -> String {
    let s: String = to_ascii_digits(raw.trim());
    if s.is_empty() {
        return s;
    }
    let digits = s.chars().filter(char::is_ascii_digit).count();
    if s.len() > 20
        || !(4..=15).contains(&digits)
        || !s
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' ' | '(' | ')'))
    {
        v.add(
            field,
            "must be a phone number: 4 to 15 digits, with + - ( ) or spaces",
        );
    }
    s
}

fn email(v: &mut Violations, field: String, raw: &str) -> String {
    let s = raw.trim().to_owned();
    if s.is_empty() {
        return s;
    }
    let ok = s.len() <= 254
        && s.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && s.matches('@').count() == 1
        && s.chars().all(|c| c.is_ascii_graphic());
    if !ok {
        v.add(field, "must be an email address");
    }
    s
}

fn registration_number(v: &mut Violations, field: String, raw: &str) -> String {
    let s = to_ascii_digits(raw.trim());
    if s.is_empty() {
        v.add(field, "must not be empty");
    } else if s.len() > 30
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '/'))
    {
        v.add(field, "must be at most 30 letters, digits, - or /");
    }
    s
}

/// Checks a list of activity areas: at least one, each known; duplicates dropped.
pub fn activity_areas(v: &mut Violations, field: &str, raw: &[i32]) -> Vec<i32> {
    if raw.is_empty() {
        v.add(field, "must name at least one activity area");
    }
    let mut out: Vec<i32> = Vec::new();
    for (i, a) in raw.iter().enumerate() {
        match ActivityArea::try_from(*a) {
            Ok(ActivityArea::Unspecified) | Err(_) => {
                v.add(
                    format!("{field}[{i}]"),
                    "must be one of the 23 activity areas",
                );
            }
            Ok(_) if !out.contains(a) => out.push(*a),
            Ok(_) => {}
        }
    }
    out.sort_unstable();
    out
}

fn kind(v: &mut Violations, field: String, raw: i32) -> i32 {
    match pb::InstitutionKind::try_from(raw) {
        Ok(pb::InstitutionKind::Unspecified) | Err(_) => {
            v.add(
                field,
                "must be one of NGO, CHARITY, FOUNDATION, COOPERATIVE, RELIGIOUS_BOARD, OTHER",
            );
        }
        Ok(_) => {}
    }
    raw
}

fn representatives(
    v: &mut Violations,
    field: &str,
    raw: &[pb::Representative],
) -> Vec<Representative> {
    if raw.len() > MAX_REPRESENTATIVES {
        v.add(field, format!("must be at most {MAX_REPRESENTATIVES}"));
    }
    let mut out = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let f = |s: &str| format!("{field}[{i}].{s}");
        let code = v
            .check(f("national_code"), NationalCode::parse(&r.national_code))
            .map(|c| c.as_str().to_owned())
            .unwrap_or_default();
        if !code.is_empty() && out.iter().any(|o: &Representative| o.national_code == code) {
            v.add(f("national_code"), "appears twice");
        }
        out.push(Representative {
            full_name: name(v, f("full_name"), &r.full_name, MAX_NAME),
            national_code: code,
            role: name(v, f("role"), &r.role, MAX_SHORT),
            phone: phone(v, f("phone"), &r.phone),
        });
    }
    out
}

impl InstitutionFields {
    /// Checks every field of a new institution.
    pub fn parse(p: &pb::Institution, prefix: &str) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let f = |s: &str| format!("{prefix}.{s}");
        let national_id = v
            .check(f("national_id"), LegalEntityId::parse(&p.national_id))
            .map(|id| id.as_str().to_owned())
            .unwrap_or_default();
        let out = Self {
            display_name: name(&mut v, f("display_name"), &p.display_name, MAX_NAME),
            kind: kind(&mut v, f("kind"), p.kind),
            national_id,
            registration_number: registration_number(
                &mut v,
                f("registration_number"),
                &p.registration_number,
            ),
            registering_authority: name(
                &mut v,
                f("registering_authority"),
                &p.registering_authority,
                MAX_NAME,
            ),
            province: name(&mut v, f("province"), &p.province, MAX_SHORT),
            city: name(&mut v, f("city"), &p.city, MAX_SHORT),
            address: v
                .check(f("address"), normalize_text(&p.address, MAX_TEXT))
                .unwrap_or_default(),
            phone: phone(&mut v, f("phone"), &p.phone),
            email: email(&mut v, f("email"), &p.email),
            activity_areas: activity_areas(&mut v, &f("activity_areas"), &p.activity_areas),
            representatives: representatives(&mut v, &f("representatives"), &p.representatives),
        };
        v.into_result()?;
        Ok(out)
    }

    /// Applies the fields named by `paths` from `p` onto `self`, checking each.
    pub fn apply_update(&mut self, p: &pb::Institution, paths: &[String]) -> Result<(), ApiError> {
        let mut v = Violations::new();
        if paths.is_empty() {
            v.add("update_mask", "must name at least one field to change");
        }
        let f = |s: &str| format!("institution.{s}");
        for (i, path) in paths.iter().enumerate() {
            match path.as_str() {
                "display_name" => {
                    self.display_name = name(&mut v, f("display_name"), &p.display_name, MAX_NAME)
                }
                "kind" => self.kind = kind(&mut v, f("kind"), p.kind),
                "registration_number" => {
                    self.registration_number = registration_number(
                        &mut v,
                        f("registration_number"),
                        &p.registration_number,
                    )
                }
                "registering_authority" => {
                    self.registering_authority = name(
                        &mut v,
                        f("registering_authority"),
                        &p.registering_authority,
                        MAX_NAME,
                    )
                }
                "province" => self.province = name(&mut v, f("province"), &p.province, MAX_SHORT),
                "city" => self.city = name(&mut v, f("city"), &p.city, MAX_SHORT),
                "address" => {
                    self.address = v
                        .check(f("address"), normalize_text(&p.address, MAX_TEXT))
                        .unwrap_or_default()
                }
                "phone" => self.phone = phone(&mut v, f("phone"), &p.phone),
                "email" => self.email = email(&mut v, f("email"), &p.email),
                "activity_areas" => {
                    self.activity_areas =
                        activity_areas(&mut v, &f("activity_areas"), &p.activity_areas)
                }
                "representatives" => {
                    self.representatives =
                        representatives(&mut v, &f("representatives"), &p.representatives)
                }
                "national_id" => v.add(
                    format!("update_mask.paths[{i}]"),
                    "national_id cannot be changed",
                ),
                other => v.add(
                    format!("update_mask.paths[{i}]"),
                    format!(
                        "{other:?} is not an updatable field; use one of {}",
                        UPDATABLE.join(", ")
                    ),
                ),
            }
        }
        v.into_result()
    }
}

/// A licence application, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenceFields {
    pub activity_areas: Vec<i32>,
    pub permitted_actions: Vec<i32>,
    pub province: String,
    pub valid_from_us: i64,
    pub valid_until_us: i64,
}

impl LicenceFields {
    pub fn parse(p: &pb::Licence, prefix: &str, now_us: i64) -> Result<Self, ApiError> {
        use mosharekat_platform::db::from_timestamp;
        let mut v = Violations::new();
        let f = |s: &str| format!("{prefix}.{s}");
        let areas = activity_areas(&mut v, &f("activity_areas"), &p.activity_areas);
        let mut actions: Vec<i32> = Vec::new();
        if p.permitted_actions.is_empty() {
            v.add(
                f("permitted_actions"),
                "must name at least one permitted action",
            );
        }
        for (i, a) in p.permitted_actions.iter().enumerate() {
            match pb::PermittedAction::try_from(*a) {
                Ok(pb::PermittedAction::Unspecified) | Err(_) => v.add(
                    format!("{}[{i}]", f("permitted_actions")),
                    "must be FILE_LAWSUIT, REPORT_CRIME, FILE_COMPLAINT or ACCEPT_REFERRALS",
                ),
                Ok(_) if !actions.contains(a) => actions.push(*a),
                Ok(_) => {}
            }
        }
        actions.sort_unstable();
        let province = name(&mut v, f("province"), &p.province, MAX_SHORT);
        let valid_from_us = match &p.valid_from {
            None => now_us,
            Some(t) => v
                .check(
                    f("valid_from"),
                    from_timestamp(t).ok_or("must be a time between 1900 and 2200"),
                )
                .unwrap_or(now_us),
        };
        let valid_until_us = match &p.valid_until {
            None => {
                v.add(f("valid_until"), "is required");
                0
            }
            Some(t) => v
                .check(
                    f("valid_until"),
                    from_timestamp(t).ok_or("must be a time between 1900 and 2200"),
                )
                .unwrap_or(0),
        };
        if valid_until_us != 0 && valid_until_us <= valid_from_us {
            v.add(f("valid_until"), "must be after valid_from");
        }
        v.into_result()?;
        Ok(Self {
            activity_areas: areas,
            permitted_actions: actions,
            province,
            valid_from_us,
            valid_until_us,
        })
    }
}

/// A search term or filter a caller typed, as the key stored text is matched by; `None`
/// when the field is empty (no filter). Refused, naming `field`, like a stored name would
/// be (controls, bidi characters, too long) and when it folds to nothing.
pub fn search_term(v: &mut Violations, field: &str, raw: &str, max: usize) -> Option<String> {
    v.check(field, search_key(raw, max)).flatten()
}

/// A reason an officer gives: required for some actions, at most `MAX_TEXT` characters.
pub fn reason(raw: &str, required: bool, field: &str) -> Result<String, ApiError> {
    let r = normalize_text(raw, MAX_TEXT).map_err(|e| ApiError::invalid(field, e.to_string()))?;
    if required && r.is_empty() {
        return Err(ApiError::invalid(field, "is required"));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn valid() -> pb::Institution {
        pb::Institution {
            display_name: "انجمن حمايت از زنان".into(),
            kind: pb::InstitutionKind::Ngo as i32,
            national_id: "10380284790".into(),
            registration_number: "۱۲۳۴".into(),
            registering_authority: "اداره ثبت اسناد".into(),
            province: "اردبيل".into(),
            city: "اردبیل".into(),
            activity_areas: vec![ActivityArea::Women as i32, ActivityArea::Mediation as i32],
            representatives: vec![pb::Representative {
                full_name: "مريم احمدی".into(),
                national_code: "0076229645".into(),
                role: "مدیرعامل".into(),
                phone: "09121234567".into(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_valid_institution_is_normalised() {
        let f = InstitutionFields::parse(&valid(), "institution").unwrap();
        assert_eq!(f.display_name, "انجمن حمایت از زنان");
        assert_eq!(f.province, "اردبیل");
        assert_eq!(f.registration_number, "1234");
        assert_eq!(
            f.activity_areas,
            vec![ActivityArea::Mediation as i32, ActivityArea::Women as i32]
        );
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut p = valid();
        p.display_name = "".into();
        p.kind = 99;
        p.national_id = "10380284791".into();
        p.activity_areas = vec![0, 77];
        p.email = "not-an-email".into();
        p.representatives[0].national_code = "1234567890".into();
        let ApiError::InvalidArgument(v) = InstitutionFields::parse(&p, "institution").unwrap_err()
        else {
            panic!("not invalid argument")
        };
        let fields: Vec<_> = v.iter().map(|f| f.field.as_str()).collect();
        for expected in [
            "institution.display_name",
            "institution.kind",
            "institution.national_id",
            "institution.activity_areas[0]",
            "institution.activity_areas[1]",
            "institution.email",
            "institution.representatives[0].national_code",
        ] {
            assert!(
                fields.contains(&expected),
                "{expected} missing from {fields:?}"
            );
        }
    }

    #[test]
    fn names_parse() {
        assert_eq!(
            parse_institution_name("institutions/abc-1", "name").unwrap(),
            "abc-1"
        );
        for bad in [
            "",
            "institutions/",
            "institution/x",
            "institutions/a/b",
            "institutions/x y",
            "institutions/' OR 1=1",
        ] {
            assert!(parse_institution_name(bad, "name").is_err(), "{bad}");
        }
        assert_eq!(
            parse_licence_name("institutions/a/licences/b", "name").unwrap(),
            ("a".to_string(), "b".to_string())
        );
        assert!(parse_licence_name("institutions/a/licences/", "name").is_err());
    }

    #[test]
    fn update_mask_paths_are_checked() {
        let mut f = InstitutionFields::parse(&valid(), "institution").unwrap();
        let mut p = valid();
        p.city = "  مشگين‌شهر ".into();
        f.apply_update(&p, &["city".into()]).unwrap();
        assert_eq!(f.city, "مشگین‌شهر");
        assert!(f.apply_update(&p, &["national_id".into()]).is_err());
        assert!(f.apply_update(&p, &["nonsense".into()]).is_err());
        assert!(f.apply_update(&p, &[]).is_err());
    }

    #[test]
    fn licence_needs_an_end_after_its_start() {
        let p = pb::Licence {
            activity_areas: vec![ActivityArea::Mediation as i32],
            permitted_actions: vec![pb::PermittedAction::FileComplaint as i32],
            province: "اردبیل".into(),
            valid_until: Some(prost_types::Timestamp {
                seconds: 10,
                nanos: 0,
            }),
            ..Default::default()
        };
        assert!(LicenceFields::parse(&p, "licence", 20_000_000).is_err());
        assert!(LicenceFields::parse(&p, "licence", 0).is_ok());
    }
}
