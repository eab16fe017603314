//! The API's edge: requests checked and turned into the registry's domain types
//! (`TryFrom<&pb::…>`, every bad field named, what passes normalised: Persian letters,
//! digits, white space), and domain types turned into responses (`From<&…> for pb::…`).

use mosharekat_api::common::v1 as common;
use mosharekat_api::registry::v1 as pb;
use mosharekat_persian::{
    LegalEntityId, NationalCode, digits::to_ascii_digits, mask, normalize_name, normalize_text,
    search_key,
};
use mosharekat_platform::db::{from_timestamp, to_timestamp};
use mosharekat_platform::error::{ApiError, Violations};

use crate::names::{InstitutionName, LicenceName};
use crate::rules::{
    ActivityArea, EligibilityQuestion, EligibilityReason, HistoryEntry, Institution,
    InstitutionFields, InstitutionKind, InstitutionState, Licence, LicenceEvent, LicenceState,
    LicenceTerms, NewInstitution, PermittedAction, Representative,
};

pub const MAX_NAME: usize = 200;
pub const MAX_SHORT: usize = 100;
pub const MAX_TEXT: usize = 2000;
pub const MAX_QUERY: usize = 200;
pub const MAX_REPRESENTATIVES: usize = 20;

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

// The domain's codes are the API's enum numbers (a proto number never changes); the
// test `domain_codes_are_the_wire_numbers` holds them to it, name by name.

pub fn area_to_pb(a: ActivityArea) -> i32 {
    a.code()
}

/// The API's name of an area (`ACTIVITY_AREA_MEDIATION`), as refusals name them.
pub fn area_token(a: ActivityArea) -> &'static str {
    common::ActivityArea::try_from(a.code())
        .map(|x| x.as_str_name())
        .unwrap_or("ACTIVITY_AREA_UNSPECIFIED")
}

pub fn reason_to_pb(r: EligibilityReason) -> pb::EligibilityReason {
    pb::EligibilityReason::try_from(r.code()).unwrap_or(pb::EligibilityReason::Unspecified)
}

/// An enum field of a request: `None` for 0 (unset) and unknown values.
fn known<T>(raw: i32, from: impl Fn(i32) -> Option<T>) -> Option<T> {
    if raw == 0 { None } else { from(raw) }
}

/// An optional enum filter: 0 is no filter, an unknown value is refused naming `field`.
pub fn enum_filter<T>(
    raw: i32,
    field: &str,
    from: impl Fn(i32) -> Option<T>,
) -> Result<Option<T>, ApiError> {
    if raw == 0 {
        return Ok(None);
    }
    from(raw)
        .map(Some)
        .ok_or_else(|| ApiError::invalid(field, "is not a known value"))
}

pub const ACTION_CHOICES: &str =
    "must be FILE_LAWSUIT, REPORT_CRIME, FILE_COMPLAINT or ACCEPT_REFERRALS";
pub const AREA_CHOICES: &str = "must be one of the 23 activity areas";

/// A required action field.
pub fn action(v: &mut Violations, field: &str, raw: i32) -> Option<PermittedAction> {
    let a = known(raw, PermittedAction::from_code);
    if a.is_none() {
        v.add(field, ACTION_CHOICES);
    }
    a
}

/// A required area field.
pub fn area(v: &mut Violations, field: &str, raw: i32) -> Option<ActivityArea> {
    let a = known(raw, ActivityArea::from_code);
    if a.is_none() {
        v.add(field, AREA_CHOICES);
    }
    a
}

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

/// Checks a list of activity areas: at least one, each known; duplicates dropped, sorted.
pub fn activity_areas(v: &mut Violations, field: &str, raw: &[i32]) -> Vec<ActivityArea> {
    if raw.is_empty() {
        v.add(field, "must name at least one activity area");
    }
    let mut out: Vec<ActivityArea> = Vec::new();
    for (i, a) in raw.iter().enumerate() {
        match known(*a, ActivityArea::from_code) {
            None => v.add(format!("{field}[{i}]"), AREA_CHOICES),
            Some(a) if !out.contains(&a) => out.push(a),
            Some(_) => {}
        }
    }
    out.sort_unstable();
    out
}

fn kind(v: &mut Violations, field: String, raw: i32) -> InstitutionKind {
    known(raw, InstitutionKind::from_code).unwrap_or_else(|| {
        v.add(
            field,
            "must be one of NGO, CHARITY, FOUNDATION, COOPERATIVE, RELIGIOUS_BOARD, OTHER",
        );
        InstitutionKind::Other
    })
}

fn representatives(
    v: &mut Violations,
    field: &str,
    raw: &[pb::Representative],
) -> Vec<Representative> {
    if raw.len() > MAX_REPRESENTATIVES {
        v.add(field, format!("must be at most {MAX_REPRESENTATIVES}"));
    }
    let mut out: Vec<Representative> = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let f = |s: &str| format!("{field}[{i}].{s}");
        let full_name = name(v, f("full_name"), &r.full_name, MAX_NAME);
        let role = name(v, f("role"), &r.role, MAX_SHORT);
        let phone = phone(v, f("phone"), &r.phone);
        let Some(code) = v.check(f("national_code"), NationalCode::parse(&r.national_code)) else {
            continue;
        };
        if out.iter().any(|o| o.national_code == code) {
            v.add(f("national_code"), "appears twice");
        }
        out.push(Representative {
            full_name,
            national_code: code,
            role,
            phone,
        });
    }
    out
}

fn address(v: &mut Violations, field: String, raw: &str) -> String {
    v.check(field, normalize_text(raw, MAX_TEXT))
        .unwrap_or_default()
}

/// The fields of `p`, checked, with `prefix` before every field's name.
fn institution_fields(p: &pb::Institution, prefix: &str, v: &mut Violations) -> InstitutionFields {
    let f = |s: &str| format!("{prefix}.{s}");
    InstitutionFields {
        display_name: name(v, f("display_name"), &p.display_name, MAX_NAME),
        kind: kind(v, f("kind"), p.kind),
        registration_number: registration_number(
            v,
            f("registration_number"),
            &p.registration_number,
        ),
        registering_authority: name(
            v,
            f("registering_authority"),
            &p.registering_authority,
            MAX_NAME,
        ),
        province: name(v, f("province"), &p.province, MAX_SHORT),
        city: name(v, f("city"), &p.city, MAX_SHORT),
        address: address(v, f("address"), &p.address),
        phone: phone(v, f("phone"), &p.phone),
        email: email(v, f("email"), &p.email),
        activity_areas: activity_areas(v, &f("activity_areas"), &p.activity_areas),
        representatives: representatives(v, &f("representatives"), &p.representatives),
    }
}

/// A new institution, from `CreateInstitutionRequest.institution`.
impl TryFrom<&pb::Institution> for NewInstitution {
    type Error = ApiError;
    fn try_from(p: &pb::Institution) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let national_id = v.check(
            "institution.national_id",
            LegalEntityId::parse(&p.national_id),
        );
        let fields = institution_fields(p, "institution", &mut v);
        v.into_result()?;
        let national_id = national_id
            .ok_or_else(|| ApiError::invalid("institution.national_id", "is required"))?;
        Ok(Self {
            national_id,
            fields,
        })
    }
}

/// Applies the fields named by `paths` from `p` onto `fields`, checking each.
pub fn apply_update(
    fields: &mut InstitutionFields,
    p: &pb::Institution,
    paths: &[String],
) -> Result<(), ApiError> {
    let mut v = Violations::new();
    if paths.is_empty() {
        v.add("update_mask", "must name at least one field to change");
    }
    let f = |s: &str| format!("institution.{s}");
    for (i, path) in paths.iter().enumerate() {
        match path.as_str() {
            "display_name" => {
                fields.display_name = name(&mut v, f("display_name"), &p.display_name, MAX_NAME)
            }
            "kind" => fields.kind = kind(&mut v, f("kind"), p.kind),
            "registration_number" => {
                fields.registration_number =
                    registration_number(&mut v, f("registration_number"), &p.registration_number)
            }
            "registering_authority" => {
                fields.registering_authority = name(
                    &mut v,
                    f("registering_authority"),
                    &p.registering_authority,
                    MAX_NAME,
                )
            }
            "province" => fields.province = name(&mut v, f("province"), &p.province, MAX_SHORT),
            "city" => fields.city = name(&mut v, f("city"), &p.city, MAX_SHORT),
            "address" => fields.address = address(&mut v, f("address"), &p.address),
            "phone" => fields.phone = phone(&mut v, f("phone"), &p.phone),
            "email" => fields.email = email(&mut v, f("email"), &p.email),
            "activity_areas" => {
                fields.activity_areas =
                    activity_areas(&mut v, &f("activity_areas"), &p.activity_areas)
            }
            "representatives" => {
                fields.representatives =
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

/// A licence application (`CreateLicenceRequest.licence`); without `valid_from` it starts
/// at `now_us`.
pub fn licence_terms(p: &pb::Licence, prefix: &str, now_us: i64) -> Result<LicenceTerms, ApiError> {
    let mut v = Violations::new();
    let f = |s: &str| format!("{prefix}.{s}");
    let areas = activity_areas(&mut v, &f("activity_areas"), &p.activity_areas);
    let mut actions: Vec<PermittedAction> = Vec::new();
    if p.permitted_actions.is_empty() {
        v.add(
            f("permitted_actions"),
            "must name at least one permitted action",
        );
    }
    for (i, a) in p.permitted_actions.iter().enumerate() {
        match known(*a, PermittedAction::from_code) {
            None => v.add(format!("{}[{i}]", f("permitted_actions")), ACTION_CHOICES),
            Some(a) if !actions.contains(&a) => actions.push(a),
            Some(_) => {}
        }
    }
    actions.sort_unstable();
    let province = name(&mut v, f("province"), &p.province, MAX_SHORT);
    let valid_from_us = match &p.valid_from {
        None => now_us,
        Some(t) => v.check(f("valid_from"), timestamp(t)).unwrap_or(now_us),
    };
    let valid_until_us = match &p.valid_until {
        None => {
            v.add(f("valid_until"), "is required");
            0
        }
        Some(t) => v.check(f("valid_until"), timestamp(t)).unwrap_or(0),
    };
    if valid_until_us != 0 && valid_until_us <= valid_from_us {
        v.add(f("valid_until"), "must be after valid_from");
    }
    // Optional: licences applied for before the district was asked have none.
    let judicial_district = if p.judicial_district.trim().is_empty() {
        String::new()
    } else {
        name(
            &mut v,
            f("judicial_district"),
            &p.judicial_district,
            MAX_SHORT,
        )
    };
    v.into_result()?;
    Ok(LicenceTerms {
        activity_areas: areas,
        permitted_actions: actions,
        province,
        valid_from_us,
        valid_until_us,
        judicial_district,
    })
}

/// A timestamp field, as stored (microseconds).
pub fn timestamp(t: &prost_types::Timestamp) -> Result<i64, &'static str> {
    from_timestamp(t).ok_or("must be a time between 1900 and 2200")
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

/// An eligibility question from `CheckEligibility` or an entry of `BatchCheckEligibility`.
impl EligibilityQuestion {
    /// Checks `q`, naming its fields after `prefix` (empty for the request itself).
    pub fn parse(q: &pb::CheckEligibilityRequest, prefix: &str) -> Result<Self, ApiError> {
        let f = |s: &str| {
            if prefix.is_empty() {
                s.to_owned()
            } else {
                format!("{prefix}.{s}")
            }
        };
        let mut v = Violations::new();
        let institution = v.check(f("institution"), q.institution.parse::<InstitutionName>());
        let action = action(&mut v, &f("action"), q.action);
        let area = area(&mut v, &f("activity_area"), q.activity_area);
        let province_key = search_term(&mut v, &f("province"), &q.province, MAX_SHORT);
        v.into_result()?;
        match (institution, action, area) {
            (Some(institution), Some(action), Some(area)) => Ok(Self {
                institution,
                action,
                area,
                province_key,
            }),
            _ => Err(ApiError::invalid(f("institution"), "is required")),
        }
    }
}

/// The API view of an institution; representatives' national codes masked unless
/// `personal_data`.
pub fn institution_to_pb(i: &Institution, etag: String, personal_data: bool) -> pb::Institution {
    let f = &i.fields;
    let (state, reason, dissolve) = match &i.state {
        InstitutionState::Active => (pb::InstitutionState::Active, String::new(), None),
        InstitutionState::Dissolved { reason, at_us } => (
            pb::InstitutionState::Dissolved,
            reason.clone(),
            Some(to_timestamp(*at_us)),
        ),
    };
    pb::Institution {
        name: i.name.to_string(),
        display_name: f.display_name.clone(),
        kind: f.kind.code(),
        national_id: i.national_id.as_str().to_owned(),
        registration_number: f.registration_number.clone(),
        registering_authority: f.registering_authority.clone(),
        province: f.province.clone(),
        city: f.city.clone(),
        address: f.address.clone(),
        phone: f.phone.clone(),
        email: f.email.clone(),
        activity_areas: f.activity_areas.iter().map(|a| area_to_pb(*a)).collect(),
        representatives: f
            .representatives
            .iter()
            .map(|r| pb::Representative {
                full_name: r.full_name.clone(),
                national_code: if personal_data {
                    r.national_code.as_str().to_owned()
                } else {
                    mask(r.national_code.as_str())
                },
                role: r.role.clone(),
                phone: r.phone.clone(),
            })
            .collect(),
        state: state as i32,
        dissolution_reason: reason,
        create_time: Some(to_timestamp(i.create_us)),
        update_time: Some(to_timestamp(i.update_us)),
        dissolve_time: dissolve,
        etag,
    }
}

impl From<&HistoryEntry> for pb::LicenceTransition {
    fn from(e: &HistoryEntry) -> Self {
        pb::LicenceTransition {
            from_state: e.from.map_or(0, LicenceState::code),
            to_state: e.to.code(),
            actor: e.actor.clone(),
            time: Some(to_timestamp(e.time_us)),
            reason: e.reason.clone(),
        }
    }
}

/// The API view of a licence, read as [`Licence::as_of`] left it.
pub fn licence_to_pb(l: &Licence, etag: String) -> pb::Licence {
    let mut p = pb::Licence::from(l);
    p.etag = etag;
    p
}

impl From<&Licence> for pb::Licence {
    fn from(l: &Licence) -> Self {
        pb::Licence {
            name: l.name.to_string(),
            activity_areas: l
                .terms
                .activity_areas
                .iter()
                .map(|a| area_to_pb(*a))
                .collect(),
            permitted_actions: l.terms.permitted_actions.iter().map(|a| a.code()).collect(),
            province: l.terms.province.clone(),
            valid_from: Some(to_timestamp(l.terms.valid_from_us)),
            valid_until: Some(to_timestamp(l.terms.valid_until_us)),
            state: l.state.code(),
            history: l.history.iter().map(Into::into).collect(),
            create_time: Some(to_timestamp(l.create_us)),
            update_time: Some(to_timestamp(l.update_us)),
            etag: String::new(),
            expiry: l.expiry.as_ref().map(Into::into),
            judicial_district: l.terms.judicial_district.clone(),
        }
    }
}

impl From<&LicenceEvent> for pb::LicenceEvent {
    fn from(e: &LicenceEvent) -> Self {
        pb::LicenceEvent {
            sequence: e.sequence,
            kind: e.entry.kind.code(),
            licence: e.licence.to_string(),
            institution: e.licence.parent().to_string(),
            from_state: e.entry.from.map_or(0, LicenceState::code),
            to_state: e.entry.to.code(),
            actor: e.entry.actor.clone(),
            actor_role: e.actor_role.clone(),
            reason: e.entry.reason.clone(),
            time: Some(to_timestamp(e.entry.time_us)),
            traceparent: e.traceparent.clone(),
        }
    }
}

/// The resource name of a licence id under `institution`, as answers carry it.
pub fn licence_name(institution: &InstitutionName, id: crate::names::LicenceId) -> String {
    LicenceName {
        institution: institution.id().clone(),
        id,
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::LicenceEventKind;

    pub fn valid() -> pb::Institution {
        pb::Institution {
            display_name: "انجمن حمايت از زنان".into(),
            kind: pb::InstitutionKind::Ngo as i32,
            national_id: "10380284790".into(),
            registration_number: "۱۲۳۴".into(),
            registering_authority: "اداره ثبت اسناد".into(),
            province: "اردبيل".into(),
            city: "اردبیل".into(),
            activity_areas: vec![
                common::ActivityArea::Women as i32,
                common::ActivityArea::Mediation as i32,
            ],
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
        let f = NewInstitution::try_from(&valid()).unwrap().fields;
        assert_eq!(f.display_name, "انجمن حمایت از زنان");
        assert_eq!(f.province, "اردبیل");
        assert_eq!(f.registration_number, "1234");
        assert_eq!(
            f.activity_areas,
            vec![ActivityArea::Mediation, ActivityArea::Women]
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
        let ApiError::InvalidArgument(v) = NewInstitution::try_from(&p).unwrap_err() else {
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
    fn update_mask_paths_are_checked() {
        let mut f = NewInstitution::try_from(&valid()).unwrap().fields;
        let mut p = valid();
        p.city = "  مشگين‌شهر ".into();
        apply_update(&mut f, &p, &["city".into()]).unwrap();
        assert_eq!(f.city, "مشگین‌شهر");
        assert!(apply_update(&mut f, &p, &["national_id".into()]).is_err());
        assert!(apply_update(&mut f, &p, &["nonsense".into()]).is_err());
        assert!(apply_update(&mut f, &p, &[]).is_err());
    }

    #[test]
    fn licence_needs_an_end_after_its_start() {
        let p = pb::Licence {
            activity_areas: vec![common::ActivityArea::Mediation as i32],
            permitted_actions: vec![pb::PermittedAction::FileComplaint as i32],
            province: "اردبیل".into(),
            valid_until: Some(prost_types::Timestamp {
                seconds: 10,
                nanos: 0,
            }),
            ..Default::default()
        };
        assert!(licence_terms(&p, "licence", 20_000_000).is_err());
        assert!(licence_terms(&p, "licence", 0).is_ok());
    }

    #[test]
    fn domain_codes_are_the_wire_numbers() {
        fn same<D: std::fmt::Debug + Copy>(
            all: &[D],
            code: fn(D) -> i32,
            wire: fn(i32) -> Option<String>,
            prefix: &str,
        ) {
            for d in all {
                let camel = format!("{d:?}");
                let mut snake = String::new();
                for (i, c) in camel.chars().enumerate() {
                    if c.is_uppercase() && i > 0 {
                        snake.push('_');
                    }
                    snake.push(c.to_ascii_uppercase());
                }
                assert_eq!(wire(code(*d)), Some(format!("{prefix}{snake}")), "{d:?}");
            }
        }
        same(
            ActivityArea::ALL,
            ActivityArea::code,
            |c| {
                common::ActivityArea::try_from(c)
                    .ok()
                    .map(|x| x.as_str_name().into())
            },
            "ACTIVITY_AREA_",
        );
        same(
            PermittedAction::ALL,
            PermittedAction::code,
            |c| {
                pb::PermittedAction::try_from(c)
                    .ok()
                    .map(|x| x.as_str_name().into())
            },
            "PERMITTED_ACTION_",
        );
        same(
            InstitutionKind::ALL,
            InstitutionKind::code,
            |c| {
                pb::InstitutionKind::try_from(c)
                    .ok()
                    .map(|x| x.as_str_name().into())
            },
            "INSTITUTION_KIND_",
        );
        same(
            LicenceState::ALL,
            LicenceState::code,
            |c| {
                pb::LicenceState::try_from(c)
                    .ok()
                    .map(|x| x.as_str_name().into())
            },
            "LICENCE_STATE_",
        );
        same(
            LicenceEventKind::ALL,
            LicenceEventKind::code,
            |c| {
                pb::LicenceEventKind::try_from(c)
                    .ok()
                    .map(|x| x.as_str_name().into())
            },
            "LICENCE_EVENT_KIND_",
        );
        same(
            EligibilityReason::ALL,
            EligibilityReason::code,
            |c| {
                pb::EligibilityReason::try_from(c)
                    .ok()
                    .map(|x| x.as_str_name().into())
            },
            "ELIGIBILITY_REASON_",
        );
        assert_eq!(ActivityArea::ALL.len(), 23);
    }
}
