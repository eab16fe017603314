//! Parsing filings and referrals at the edge: every bad field named, text normalised.

use mosharekat_api::common::v1::{ActivityArea, DocumentRef, Party, PartyRole};
use mosharekat_api::referral::v1 as pb;
use mosharekat_persian::{NationalCode, normalize_name, normalize_text};
use mosharekat_platform::db::from_timestamp;
use mosharekat_platform::error::{ApiError, Violations};

pub const MAX_NAME: usize = 200;
pub const MAX_TEXT: usize = 10_000;
pub const MAX_PARTIES: usize = 50;
pub const MAX_DOCUMENTS: usize = 100;

pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// `{collection}/{id}` → id.
pub fn parse_name(name: &str, collection: &str, field: &str) -> Result<String, ApiError> {
    match name
        .strip_prefix(collection)
        .and_then(|r| r.strip_prefix('/'))
    {
        Some(id) if valid_id(id) => Ok(id.to_owned()),
        _ => Err(ApiError::invalid(
            field,
            format!("must be {collection}/{{id}}"),
        )),
    }
}

fn name(v: &mut Violations, field: String, raw: &str) -> String {
    v.check(field, normalize_name(raw, MAX_NAME))
        .unwrap_or_default()
}

fn text(v: &mut Violations, field: String, raw: &str) -> String {
    v.check(field, normalize_text(raw, MAX_TEXT))
        .unwrap_or_default()
}

fn known<T: TryFrom<i32> + PartialEq + Copy>(
    v: &mut Violations,
    field: String,
    raw: i32,
    unspecified: T,
    what: &str,
) -> i32 {
    match T::try_from(raw) {
        Ok(x) if x != unspecified => raw,
        _ => {
            v.add(field, format!("must be {what}"));
            raw
        }
    }
}

pub fn area(v: &mut Violations, field: String, raw: i32) -> i32 {
    known(
        v,
        field,
        raw,
        ActivityArea::Unspecified,
        "one of the 23 activity areas",
    )
}

/// Parties as sent. `may_seal`: whether the sender may seal parties as it writes them (the
/// source of a referral may; a filing institution may not, its filing's parties are sealed
/// by the addressed authority, and `sealed` is then ignored).
fn parties(v: &mut Violations, field: &str, raw: &[Party], may_seal: bool) -> Vec<Party> {
    if raw.len() > MAX_PARTIES {
        v.add(field, format!("must be at most {MAX_PARTIES}"));
    }
    raw.iter()
        .enumerate()
        .map(|(i, p)| {
            let f = |s: &str| format!("{field}[{i}].{s}");
            let national_code = if p.national_code.trim().is_empty() {
                String::new()
            } else {
                v.check(f("national_code"), NationalCode::parse(&p.national_code))
                    .map(|c| c.as_str().to_owned())
                    .unwrap_or_default()
            };
            let sealed = may_seal && p.sealed;
            if sealed && !crate::domain::sealable(p) {
                v.add(f("sealed"), "only a minor or a victim can be sealed");
            }
            Party {
                full_name: name(v, f("full_name"), &p.full_name),
                national_code,
                role: known(
                    v,
                    f("role"),
                    p.role,
                    PartyRole::Unspecified,
                    "VICTIM, ACCUSED, RESPONDENT, CLAIMANT, DISPUTANT or OTHER",
                ),
                minor: p.minor,
                legally_incapacitated: p.legally_incapacitated,
                guardian_is_accused: p.guardian_is_accused,
                sealed,
            }
        })
        .collect()
}

fn document(v: &mut Violations, field: &str, d: &DocumentRef) -> DocumentRef {
    let sha = d.sha256.trim().to_ascii_lowercase();
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        v.add(format!("{field}.sha256"), "must be 64 hexadecimal digits");
    }
    if d.size_bytes < 0 {
        v.add(format!("{field}.size_bytes"), "must not be negative");
    }
    let media = d.media_type.trim().to_owned();
    if media.len() > 100
        || (!media.is_empty() && !media.contains('/'))
        || !media.chars().all(|c| c.is_ascii_graphic())
    {
        v.add(
            format!("{field}.media_type"),
            "must be a media type such as application/pdf",
        );
    }
    DocumentRef {
        title: name(v, format!("{field}.title"), &d.title),
        sha256: sha,
        size_bytes: d.size_bytes,
        media_type: media,
    }
}

fn documents(v: &mut Violations, field: &str, raw: &[DocumentRef]) -> Vec<DocumentRef> {
    if raw.len() > MAX_DOCUMENTS {
        v.add(field, format!("must be at most {MAX_DOCUMENTS}"));
    }
    raw.iter()
        .enumerate()
        .map(|(i, d)| document(v, &format!("{field}[{i}]"), d))
        .collect()
}

fn consents(
    v: &mut Violations,
    field: &str,
    raw: &[pb::Consent],
    parties: usize,
) -> Vec<pb::Consent> {
    raw.iter()
        .enumerate()
        .map(|(i, c)| {
            let f = |s: &str| format!("{field}[{i}].{s}");
            if c.party_index < 0 || c.party_index as usize >= parties {
                v.add(
                    f("party_index"),
                    "must be the index of one of the filing's parties",
                );
            }
            if let Some(t) = &c.time
                && from_timestamp(t).is_none()
            {
                v.add(f("time"), "must be a time between 1900 and 2200");
            }
            if c.time.is_none() {
                v.add(f("time"), "is required");
            }
            pb::Consent {
                party_index: c.party_index,
                given_by: name(v, f("given_by"), &c.given_by),
                basis: known(
                    v,
                    f("basis"),
                    c.basis,
                    pb::ConsentBasis::Unspecified,
                    "VICTIM, GUARDIAN, TEMPORARY_GUARDIAN or PROSECUTOR_APPROVAL",
                ),
                time: c.time,
                document: match &c.document {
                    Some(d) => Some(document(v, &f("document"), d)),
                    None => {
                        v.add(f("document"), "is required");
                        None
                    }
                },
            }
        })
        .collect()
}

/// The fields of a filing an institution writes, as `UpdateFiling` may change them.
pub const FILING_FIELDS: &[&str] = &[
    "kind",
    "activity_area",
    "authority",
    "province",
    "subject",
    "description",
    "parties",
    "documents",
    "consents",
];

/// Checks and normalises the fields named by `paths` (all of them on create) from `src`
/// into `dst`.
pub fn apply_filing(
    dst: &mut pb::Filing,
    src: &pb::Filing,
    paths: &[&str],
    prefix: &str,
) -> Result<(), ApiError> {
    let mut v = Violations::new();
    let f = |s: &str| format!("{prefix}.{s}");
    for (i, p) in paths.iter().enumerate() {
        match *p {
            "kind" => {
                dst.kind = known(
                    &mut v,
                    f("kind"),
                    src.kind,
                    pb::FilingKind::Unspecified,
                    "LAWSUIT, CRIME_REPORT or COMPLAINT",
                )
            }
            "activity_area" => {
                dst.activity_area = area(&mut v, f("activity_area"), src.activity_area)
            }
            "authority" => dst.authority = name(&mut v, f("authority"), &src.authority),
            "province" => dst.province = name(&mut v, f("province"), &src.province),
            "subject" => dst.subject = name(&mut v, f("subject"), &src.subject),
            "description" => dst.description = text(&mut v, f("description"), &src.description),
            "parties" => dst.parties = parties(&mut v, &f("parties"), &src.parties, false),
            "documents" => dst.documents = documents(&mut v, &f("documents"), &src.documents),
            "consents" => {
                dst.consents = consents(
                    &mut v,
                    &f("consents"),
                    &src.consents,
                    dst.parties.len().max(src.parties.len()),
                )
            }
            other => v.add(
                format!("update_mask.paths[{i}]"),
                format!(
                    "{other:?} is not an updatable field; use one of {}",
                    FILING_FIELDS.join(", ")
                ),
            ),
        }
    }
    if paths.is_empty() {
        v.add("update_mask", "must name at least one field to change");
    }
    v.into_result()
}

/// Checks a new referral.
pub fn parse_referral(src: &pb::Referral) -> Result<pb::Referral, ApiError> {
    let mut v = Violations::new();
    let f = |s: &str| format!("referral.{s}");
    let institution = src
        .institution
        .strip_prefix("institutions/")
        .filter(|i| valid_id(i));
    if institution.is_none() {
        v.add(f("institution"), "must be institutions/{id}");
    }
    let case = normalize_name(
        &mosharekat_persian::digits::to_ascii_digits(&src.source_case_number),
        64,
    );
    let out = pb::Referral {
        source: known(
            &mut v,
            f("source"),
            src.source,
            pb::ReferralSource::Unspecified,
            "DISPUTE_RESOLUTION_CENTER, PROSECUTOR, COURT or PRISONS",
        ),
        source_case_number: v.check(f("source_case_number"), case).unwrap_or_default(),
        kind: known(
            &mut v,
            f("kind"),
            src.kind,
            pb::ReferralKind::Unspecified,
            "a referral kind such as RECONCILIATION",
        ),
        activity_area: area(&mut v, f("activity_area"), src.activity_area),
        province: name(&mut v, f("province"), &src.province),
        parties: parties(&mut v, &f("parties"), &src.parties, true),
        summary: text(&mut v, f("summary"), &src.summary),
        institution: src.institution.clone(),
        ..Default::default()
    };
    if out.parties.is_empty() {
        v.add(f("parties"), "must name at least one party");
    }
    v.into_result()?;
    Ok(out)
}

/// A reason a person gives: required or not, at most `MAX_TEXT` characters.
pub fn reason(raw: &str, required: bool, field: &str) -> Result<String, ApiError> {
    let r = normalize_text(raw, MAX_TEXT).map_err(|e| ApiError::invalid(field, e.to_string()))?;
    if required && r.is_empty() {
        return Err(ApiError::invalid(field, "is required"));
    }
    Ok(r)
}

pub fn progress(e: &pb::ProgressEntry) -> Result<pb::ProgressEntry, ApiError> {
    let mut v = Violations::new();
    match &e.session_time {
        None => v.add("entry.session_time", "is required"),
        Some(t) if from_timestamp(t).is_none() => {
            v.add("entry.session_time", "must be a time between 1900 and 2200")
        }
        Some(_) => {}
    }
    if e.attendees.is_empty() {
        v.add("entry.attendees", "must name who attended");
    }
    let attendees = e
        .attendees
        .iter()
        .enumerate()
        .map(|(i, a)| name(&mut v, format!("entry.attendees[{i}]"), a))
        .collect();
    let notes = text(&mut v, "entry.notes".into(), &e.notes);
    if notes.is_empty() {
        v.add("entry.notes", "must say what happened");
    }
    v.into_result()?;
    Ok(pb::ProgressEntry {
        session_time: e.session_time,
        attendees,
        notes,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(parse_name("filings/abc", "filings", "name").unwrap(), "abc");
        assert!(parse_name("filings/", "filings", "name").is_err());
        assert!(parse_name("referrals/abc", "filings", "name").is_err());
        assert!(parse_name("filingsabc", "filings", "name").is_err());
    }

    #[test]
    fn filing_fields_are_checked_and_named() {
        let src = pb::Filing {
            kind: 7,
            activity_area: 0,
            authority: String::new(),
            parties: vec![Party {
                full_name: "x".into(),
                national_code: "123".into(),
                role: 1,
                ..Default::default()
            }],
            documents: vec![DocumentRef {
                title: "t".into(),
                sha256: "nope".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut dst = pb::Filing::default();
        let ApiError::InvalidArgument(v) =
            apply_filing(&mut dst, &src, FILING_FIELDS, "filing").unwrap_err()
        else {
            panic!()
        };
        let fields: Vec<&str> = v.iter().map(|f| f.field.as_str()).collect();
        for f in [
            "filing.kind",
            "filing.activity_area",
            "filing.authority",
            "filing.parties[0].national_code",
            "filing.documents[0].sha256",
        ] {
            assert!(fields.contains(&f), "{f} not in {fields:?}");
        }
    }
}
