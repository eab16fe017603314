//! `mosharekat.referral.v1.ReferralService`: each RPC checks the caller's role, reads the
//! request into domain types (every bad field named), calls its use case in
//! [`crate::app`], and turns the answer into the response, masking what the caller may
//! not see. Nothing else happens here.

use std::collections::BTreeMap;

use mosharekat_api::common::v1 as common;
use mosharekat_api::referral::v1 as pb;
use mosharekat_api::referral::v1::referral_service_server::ReferralService;
use mosharekat_persian::{NationalCode, normalize_name, normalize_text};
use mosharekat_platform::ctx::CallContext;
use mosharekat_platform::db::{from_timestamp, to_timestamp};
use mosharekat_platform::error::{ApiError, Violations};
use mosharekat_platform::{idempotency, pagination};
use tonic::{Request, Response, Status};

use crate::app::{
    App, FilingFilter, FilingPatch, NewProgress, NewReferral, Page, ReferralFilter, Resolution,
    Shown, Statistics, Suggestion,
};
use crate::model::{
    ActivityArea, Consent, ConsentBasis, Document, Filing, FilingKind, FilingState,
    NotReconciledReason, Party, PartyAgreement, PartyRole, ProgressEntry, Referral, ReferralKind,
    ReferralOutcome, ReferralSource, ReferralState, TimelineEntry, instant,
};
use crate::names::{FilingId, InstitutionId, ReferralId};
use crate::reads::{self, ReadRecord};
use crate::rules::{self, ReferralAction};

pub const MAX_NAME: usize = 200;
pub const MAX_TEXT: usize = 10_000;
pub const MAX_PARTIES: usize = 50;
pub const MAX_DOCUMENTS: usize = 100;

/// The name a masked party is shown under.
pub const SEALED_NAME: &str = "محرمانه";

/// One RPC: the caller, its role checked against `$roles`, then `$body` on the request.
macro_rules! rpc {
    ($request:ident, $roles:expr, |$ctx:ident, $req:ident| $body:expr) => {{
        let $ctx = CallContext::from_request(&$request)?;
        $ctx.require($roles)?;
        let $req = $request.into_inner();
        let out: Result<_, Status> = async { $body }.await;
        out.map(Response::new)
    }};
}

// ---------- requests → domain ----------

fn name(v: &mut Violations, field: String, raw: &str) -> String {
    v.check(field, normalize_name(raw, MAX_NAME))
        .unwrap_or_default()
}

fn text(v: &mut Violations, field: String, raw: &str) -> String {
    v.check(field, normalize_text(raw, MAX_TEXT))
        .unwrap_or_default()
}

/// A required enum of the domain from its API number.
fn known<T: Copy>(
    v: &mut Violations,
    field: String,
    raw: i32,
    from_code: fn(i32) -> Option<T>,
    what: &str,
) -> Option<T> {
    let x = from_code(raw);
    if x.is_none() {
        v.add(field, format!("must be {what}"));
    }
    x
}

fn area_from_code(raw: i32) -> Option<ActivityArea> {
    match common::ActivityArea::try_from(raw) {
        Ok(a) if a != common::ActivityArea::Unspecified => Some(ActivityArea(raw)),
        _ => None,
    }
}

fn area(v: &mut Violations, field: String, raw: i32) -> Option<ActivityArea> {
    known(
        v,
        field,
        raw,
        area_from_code,
        "one of the 23 activity areas",
    )
}

/// An optional filter: 0 is none, an unknown number INVALID_ARGUMENT.
fn filter<T>(
    raw: i32,
    from_code: fn(i32) -> Option<T>,
    field: &str,
) -> Result<Option<T>, ApiError> {
    match raw {
        0 => Ok(None),
        n => from_code(n)
            .map(Some)
            .ok_or_else(|| ApiError::invalid(field, "is not a known value")),
    }
}

fn time(t: &Option<prost_types::Timestamp>, field: &str) -> Result<Option<i64>, ApiError> {
    t.as_ref()
        .map(|t| {
            from_timestamp(t)
                .ok_or_else(|| ApiError::invalid(field, "must be a time between 1900 and 2200"))
        })
        .transpose()
}

/// A reason a person gives: required or not, at most `MAX_TEXT` characters.
fn reason(raw: &str, required: bool, field: &str) -> Result<String, ApiError> {
    let r = normalize_text(raw, MAX_TEXT).map_err(|e| ApiError::invalid(field, e.to_string()))?;
    if required && r.is_empty() {
        return Err(ApiError::invalid(field, "is required"));
    }
    Ok(r)
}

fn party_index(raw: i32) -> Result<usize, ApiError> {
    usize::try_from(raw).map_err(|_| ApiError::invalid("party_index", "must not be negative"))
}

/// Parties as sent. `may_seal`: whether the sender may seal parties as it writes them (the
/// source of a referral may; a filing institution may not, its filing's parties are sealed
/// by the addressed authority, and `sealed` is then ignored).
fn parties(v: &mut Violations, field: &str, raw: &[common::Party], may_seal: bool) -> Vec<Party> {
    if raw.len() > MAX_PARTIES {
        v.add(field, format!("must be at most {MAX_PARTIES}"));
    }
    raw.iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let f = |s: &str| format!("{field}[{i}].{s}");
            let national_code = if p.national_code.trim().is_empty() {
                None
            } else {
                v.check(f("national_code"), NationalCode::parse(&p.national_code))
            };
            let full_name = name(v, f("full_name"), &p.full_name);
            let role = known(
                v,
                f("role"),
                p.role,
                PartyRole::from_code,
                "VICTIM, ACCUSED, RESPONDENT, CLAIMANT, DISPUTANT or OTHER",
            );
            let sealed = may_seal && p.sealed;
            if sealed && !(p.minor || role == Some(PartyRole::Victim)) {
                v.add(f("sealed"), "only a minor or a victim can be sealed");
            }
            Some(Party {
                full_name,
                national_code,
                role: role?,
                minor: p.minor,
                legally_incapacitated: p.legally_incapacitated,
                guardian_is_accused: p.guardian_is_accused,
                sealed,
            })
        })
        .collect()
}

fn document(v: &mut Violations, field: &str, d: &common::DocumentRef) -> Document {
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
    Document {
        title: name(v, format!("{field}.title"), &d.title),
        sha256: sha,
        size_bytes: d.size_bytes,
        media_type: media,
    }
}

fn documents(v: &mut Violations, field: &str, raw: &[common::DocumentRef]) -> Vec<Document> {
    if raw.len() > MAX_DOCUMENTS {
        v.add(field, format!("must be at most {MAX_DOCUMENTS}"));
    }
    raw.iter()
        .enumerate()
        .map(|(i, d)| document(v, &format!("{field}[{i}]"), d))
        .collect()
}

/// Consents as sent; `parties`, when known here, bounds their party index (else the
/// rules check it against the filing's parties).
fn consents(
    v: &mut Violations,
    field: &str,
    raw: &[pb::Consent],
    parties: Option<usize>,
) -> Vec<Consent> {
    raw.iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let f = |s: &str| format!("{field}[{i}].{s}");
            let index = usize::try_from(c.party_index).ok();
            if index.is_none() || parties.is_some_and(|n| index.is_some_and(|i| i >= n)) {
                v.add(
                    f("party_index"),
                    "must be the index of one of the filing's parties",
                );
            }
            let time = match &c.time {
                Some(t) => {
                    let us = from_timestamp(t);
                    if us.is_none() {
                        v.add(f("time"), "must be a time between 1900 and 2200");
                    }
                    us.map(instant)
                }
                None => {
                    v.add(f("time"), "is required");
                    None
                }
            };
            let given_by = name(v, f("given_by"), &c.given_by);
            let basis = known(
                v,
                f("basis"),
                c.basis,
                ConsentBasis::from_code,
                "VICTIM, GUARDIAN, TEMPORARY_GUARDIAN or PROSECUTOR_APPROVAL",
            );
            let document = match &c.document {
                Some(d) => Some(document(v, &f("document"), d)),
                None => {
                    v.add(f("document"), "is required");
                    None
                }
            };
            Some(Consent {
                party_index: index?,
                given_by,
                basis: basis?,
                time: time?,
                document: document?,
            })
        })
        .collect()
}

/// The parties' agreements as sent (art. 82); `parties`, when known here, bounds their
/// party index (else the rules check it against the referral's parties).
fn agreements(
    v: &mut Violations,
    field: &str,
    raw: &[pb::PartyAgreement],
    parties: Option<usize>,
) -> Vec<PartyAgreement> {
    if raw.len() > MAX_PARTIES {
        v.add(field, format!("must be at most {MAX_PARTIES}"));
    }
    raw.iter()
        .enumerate()
        .filter_map(|(i, a)| {
            let f = |s: &str| format!("{field}[{i}].{s}");
            let index = usize::try_from(a.party_index).ok();
            if index.is_none() || parties.is_some_and(|n| index.is_some_and(|i| i >= n)) {
                v.add(
                    f("party_index"),
                    "must be the index of one of the referral's parties",
                );
            }
            let time = match &a.time {
                Some(t) => {
                    let us = from_timestamp(t);
                    if us.is_none() {
                        v.add(f("time"), "must be a time between 1900 and 2200");
                    }
                    us.map(instant)
                }
                None => {
                    v.add(f("time"), "is required");
                    None
                }
            };
            let given_by = name(v, f("given_by"), &a.given_by);
            let document = match &a.document {
                Some(d) => Some(document(v, &f("document"), d)),
                None => {
                    v.add(f("document"), "is required");
                    None
                }
            };
            Some(PartyAgreement {
                party_index: index?,
                given_by,
                time: time?,
                document: document?,
            })
        })
        .collect()
}

/// An optional short name (a judicial district): empty when not given.
fn optional_name(v: &mut Violations, field: String, raw: &str) -> String {
    if raw.trim().is_empty() {
        return String::new();
    }
    v.check(field, normalize_name(raw, 100)).unwrap_or_default()
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

/// Checks and normalises the fields named by `paths` (all of them on create) of `src`.
pub fn filing_patch(
    src: &pb::Filing,
    paths: &[&str],
    prefix: &str,
) -> Result<FilingPatch, ApiError> {
    let mut v = Violations::new();
    let f = |s: &str| format!("{prefix}.{s}");
    let mut out = FilingPatch::default();
    let parties_known = paths.contains(&"parties").then_some(src.parties.len());
    for (i, p) in paths.iter().enumerate() {
        match *p {
            "kind" => {
                out.kind = known(
                    &mut v,
                    f("kind"),
                    src.kind,
                    FilingKind::from_code,
                    "LAWSUIT, CRIME_REPORT or COMPLAINT",
                )
            }
            "activity_area" => {
                out.activity_area = area(&mut v, f("activity_area"), src.activity_area)
            }
            "authority" => out.authority = Some(name(&mut v, f("authority"), &src.authority)),
            "province" => out.province = Some(name(&mut v, f("province"), &src.province)),
            "subject" => out.subject = Some(name(&mut v, f("subject"), &src.subject)),
            "description" => {
                out.description = Some(text(&mut v, f("description"), &src.description))
            }
            "parties" => out.parties = Some(parties(&mut v, &f("parties"), &src.parties, false)),
            "documents" => out.documents = Some(documents(&mut v, &f("documents"), &src.documents)),
            "consents" => {
                out.consents = Some(consents(
                    &mut v,
                    &f("consents"),
                    &src.consents,
                    parties_known,
                ))
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
    v.into_result()?;
    Ok(out)
}

/// Checks a new referral.
pub fn new_referral(src: &pb::Referral) -> Result<NewReferral, ApiError> {
    let mut v = Violations::new();
    let f = |s: &str| format!("referral.{s}");
    let institution = InstitutionId::from_name(&src.institution);
    if institution.is_none() {
        v.add(f("institution"), "must be institutions/{id}");
    }
    let case = normalize_name(
        &mosharekat_persian::digits::to_ascii_digits(&src.source_case_number),
        64,
    );
    let source = known(
        &mut v,
        f("source"),
        src.source,
        ReferralSource::from_code,
        "DISPUTE_RESOLUTION_CENTER, PROSECUTOR, COURT or PRISONS",
    );
    let source_case_number = v.check(f("source_case_number"), case).unwrap_or_default();
    let kind = known(
        &mut v,
        f("kind"),
        src.kind,
        ReferralKind::from_code,
        "a referral kind such as RECONCILIATION",
    );
    let activity_area = area(&mut v, f("activity_area"), src.activity_area);
    let province = name(&mut v, f("province"), &src.province);
    let parties = parties(&mut v, &f("parties"), &src.parties, true);
    let summary = text(&mut v, f("summary"), &src.summary);
    if src.parties.is_empty() {
        v.add(f("parties"), "must name at least one party");
    }
    let judicial_district = optional_name(&mut v, f("judicial_district"), &src.judicial_district);
    let agreements = agreements(
        &mut v,
        &f("agreements"),
        &src.agreements,
        Some(src.parties.len()),
    );
    v.into_result()?;
    match (institution, source, kind, activity_area) {
        (Some(institution), Some(source), Some(kind), Some(activity_area)) => Ok(NewReferral {
            source,
            source_case_number,
            kind,
            activity_area,
            province,
            parties,
            summary,
            institution,
            judicial_district,
            agreements,
            chosen_by_parties: src.chosen_by_parties,
        }),
        // Each missing one added a violation above.
        _ => Err(ApiError::invalid("referral", "is not a valid referral")),
    }
}

fn progress(e: &pb::ProgressEntry) -> Result<NewProgress, ApiError> {
    let mut v = Violations::new();
    let session_time = match &e.session_time {
        None => {
            v.add("entry.session_time", "is required");
            None
        }
        Some(t) => {
            let us = from_timestamp(t);
            if us.is_none() {
                v.add("entry.session_time", "must be a time between 1900 and 2200");
            }
            us.map(instant)
        }
    };
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
    Ok(NewProgress {
        session_time: session_time.unwrap_or_default(),
        attendees,
        notes,
    })
}

fn page(size: i32, token: &str) -> Result<Page, ApiError> {
    Ok(Page {
        size: pagination::page_size(size, "page_size")?,
        token: token.to_owned(),
    })
}

fn institution_filter(raw: &str, field: &str) -> Result<Option<InstitutionId>, ApiError> {
    if raw.is_empty() {
        return Ok(None);
    }
    InstitutionId::parse(raw, field).map(Some)
}

// ---------- domain → responses ----------

fn ts(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    to_timestamp(t.timestamp_micros())
}

fn party(p: &Party) -> common::Party {
    common::Party {
        full_name: p.full_name.clone(),
        national_code: p
            .national_code
            .as_ref()
            .map(|c| c.as_str().to_owned())
            .unwrap_or_default(),
        role: p.role.code(),
        minor: p.minor,
        legally_incapacitated: p.legally_incapacitated,
        guardian_is_accused: p.guardian_is_accused,
        sealed: p.sealed,
    }
}

fn document_ref(d: &Document) -> common::DocumentRef {
    common::DocumentRef {
        title: d.title.clone(),
        sha256: d.sha256.clone(),
        size_bytes: d.size_bytes,
        media_type: d.media_type.clone(),
    }
}

fn timeline(t: &[TimelineEntry]) -> Vec<common::TimelineEntry> {
    t.iter()
        .map(|e| common::TimelineEntry {
            from_state: e.from.clone(),
            to_state: e.to.clone(),
            actor: e.actor.clone(),
            time: Some(ts(e.time)),
            note: e.note.clone(),
        })
        .collect()
}

impl From<&Filing> for pb::Filing {
    fn from(f: &Filing) -> Self {
        pb::Filing {
            name: f.id.name(),
            institution: f.institution.name(),
            kind: f.kind.code(),
            activity_area: f.activity_area.code(),
            authority: f.authority.clone(),
            province: f.province.clone(),
            subject: f.subject.clone(),
            description: f.description.clone(),
            parties: f.parties.iter().map(party).collect(),
            documents: f.documents.iter().map(document_ref).collect(),
            consents: f
                .consents
                .iter()
                .map(|c| pb::Consent {
                    party_index: c.party_index as i32,
                    given_by: c.given_by.clone(),
                    basis: c.basis.code(),
                    time: Some(ts(c.time)),
                    document: Some(document_ref(&c.document)),
                })
                .collect(),
            state: f.state.code(),
            case_number: f.case_number.clone().unwrap_or_default(),
            rejection_reason: f.rejection_reason.clone(),
            outcome: f.outcome.clone(),
            timeline: vec![],
            create_time: Some(ts(f.create_time)),
            update_time: Some(ts(f.update_time)),
            submit_time: f.submit_time.map(ts),
            etag: String::new(),
            reference: f.reference as i64,
        }
    }
}

impl From<&Referral> for pb::Referral {
    fn from(r: &Referral) -> Self {
        pb::Referral {
            name: r.id.name(),
            source: r.source.code(),
            source_case_number: r.source_case_number.clone(),
            kind: r.kind.code(),
            activity_area: r.activity_area.code(),
            province: r.province.clone(),
            parties: r.parties.iter().map(party).collect(),
            summary: r.summary.clone(),
            institution: r.institution.name(),
            state: r.state.code(),
            due_time: r.due_time.map(ts),
            extended: r.extended,
            extension_reason: r.extension_reason.clone(),
            progress: r
                .progress
                .iter()
                .map(|p: &ProgressEntry| pb::ProgressEntry {
                    session_time: Some(ts(p.session_time)),
                    attendees: p.attendees.clone(),
                    notes: p.notes.clone(),
                    recorded_by: p.recorded_by.clone(),
                    record_time: Some(ts(p.record_time)),
                })
                .collect(),
            outcome: r.outcome.map_or(0, ReferralOutcome::code),
            not_reconciled_reason: r.not_reconciled_reason.map_or(0, NotReconciledReason::code),
            settlement_text: r.settlement_text.clone(),
            state_reason: r.state_reason.clone(),
            overdue: false,
            timeline: vec![],
            create_time: Some(ts(r.create_time)),
            update_time: Some(ts(r.update_time)),
            accept_time: r.accept_time.map(ts),
            resolve_time: r.resolve_time.map(ts),
            etag: String::new(),
            due: r.due.as_ref().map(Into::into),
            answer: r
                .answer
                .as_ref()
                .filter(|_| r.state == ReferralState::Offered)
                .map(Into::into),
            reference: r.reference as i64,
            judicial_district: r.judicial_district.clone(),
            agreements: r
                .agreements
                .iter()
                .map(|a| pb::PartyAgreement {
                    party_index: a.party_index as i32,
                    given_by: a.given_by.clone(),
                    time: Some(ts(a.time)),
                    document: Some(document_ref(&a.document)),
                })
                .collect(),
            chosen_by_parties: r.chosen_by_parties,
            extension_request: r.extension_request.as_ref().map(|x| pb::ExtensionRequest {
                reason: x.reason.clone(),
                requested_by: x.requested_by.clone(),
                request_time: Some(ts(x.request_time)),
                state: x.state.code(),
                answer_reason: x.answer_reason.clone(),
                answered_by: x.answered_by.clone(),
                answer_time: x.answer_time.map(ts),
            }),
            answer_overdue: false,
        }
    }
}

/// Masks what identifies a sealed party: its name and national code (`******1234`), the
/// name of whoever consented for it, and its name where a session lists it among the
/// attendees. Free text (summaries, notes) is the writer's to keep clean.
pub fn mask_sealed(
    parties: &mut [common::Party],
    consents: &mut [pb::Consent],
    attendees: &mut [&mut Vec<String>],
) {
    let fold = mosharekat_persian::fold_for_search;
    let mut names = Vec::new();
    for (i, p) in parties.iter_mut().enumerate() {
        if !p.sealed {
            continue;
        }
        if !p.full_name.is_empty() {
            names.push(fold(&p.full_name));
        }
        p.full_name = SEALED_NAME.to_owned();
        p.national_code = mosharekat_persian::mask(&p.national_code);
        for c in consents.iter_mut().filter(|c| c.party_index == i as i32) {
            c.given_by = SEALED_NAME.to_owned();
        }
    }
    for list in attendees.iter_mut() {
        for a in list.iter_mut() {
            if names.contains(&fold(a)) {
                *a = SEALED_NAME.to_owned();
            }
        }
    }
}

/// A filing as the caller it was read for may see it.
fn filing(s: &Shown<Filing>) -> pb::Filing {
    let mut f = pb::Filing::from(&s.value);
    f.etag = s.version.to_string();
    f.timeline = timeline(&s.timeline);
    if !s.sees_sealed {
        mask_sealed(&mut f.parties, &mut f.consents, &mut []);
    }
    f
}

/// A referral as the caller it was read for may see it.
fn referral(s: &Shown<Referral>) -> pb::Referral {
    let mut r = pb::Referral::from(&s.value);
    r.etag = s.version.to_string();
    r.timeline = timeline(&s.timeline);
    r.overdue = s.overdue;
    r.answer_overdue = s.answer_overdue;
    if !s.sees_sealed {
        let mut attendees: Vec<&mut Vec<String>> =
            r.progress.iter_mut().map(|p| &mut p.attendees).collect();
        mask_sealed(&mut r.parties, &mut [], &mut attendees);
        // Whoever agreed for a sealed party is named no more than the party.
        for a in r.agreements.iter_mut() {
            if r.parties
                .get(a.party_index as usize)
                .is_some_and(|p| p.sealed)
            {
                a.given_by = SEALED_NAME.to_owned();
            }
        }
    }
    r
}

fn suggestion(s: Suggestion) -> pb::Suggestion {
    pb::Suggestion {
        institution: s.institution.name(),
        display_name: s.display_name,
        rank: s.rank,
        open_referrals: s.open_referrals,
        reconciliation_rate: s.reconciliation_rate,
        resolved_referrals: s.resolved_referrals,
        has_unextended_overdue: s.has_unextended_overdue,
        reason: s.reason,
        late_answers: s.late_answers,
        in_district: s.in_district,
        judicial_district: s.judicial_district,
    }
}

fn counts(m: BTreeMap<String, i64>) -> Vec<pb::Count> {
    m.into_iter()
        .map(|(key, count)| pb::Count { key, count })
        .collect()
}

fn area_counts(m: BTreeMap<i32, i64>) -> Vec<pb::Count> {
    let mut named: BTreeMap<String, i64> = BTreeMap::new();
    for (code, n) in m {
        let key = common::ActivityArea::try_from(code)
            .map(|a| {
                a.as_str_name()
                    .trim_start_matches("ACTIVITY_AREA_")
                    .to_owned()
            })
            .unwrap_or_default();
        *named.entry(key).or_default() += n;
    }
    counts(named)
}

fn statistics(s: Statistics) -> pb::GetStatisticsResponse {
    pb::GetStatisticsResponse {
        province: s.province,
        filings_total: s.filings_total,
        filings_by_kind: counts(s.filings_by_kind),
        filings_by_state: counts(s.filings_by_state),
        filings_by_area: area_counts(s.filings_by_area),
        filings_by_institution: counts(s.filings_by_institution),
        referrals_total: s.referrals_total,
        referrals_by_kind: counts(s.referrals_by_kind),
        referrals_by_state: counts(s.referrals_by_state),
        referrals_by_area: area_counts(s.referrals_by_area),
        referrals_by_institution: counts(s.referrals_by_institution),
        reconciliation_rate: s.reconciliation_rate,
        median_days_to_resolve: s.median_days_to_resolve,
        overdue_count: s.overdue_count,
        resolved_count: s.resolved_count,
    }
}

impl From<ReadRecord> for pb::ReadRecord {
    fn from(r: ReadRecord) -> Self {
        Self {
            sequence: r.seq,
            time: Some(to_timestamp(r.time_us)),
            reader: r.reader,
            role: r.role,
            on_behalf_of: r.on_behalf_of,
            resource: r.resource,
            method: r.method,
            trace_id: r.trace_id,
        }
    }
}

// ---------- the service ----------

#[tonic::async_trait]
impl ReferralService for App {
    #[tracing::instrument(skip_all)]
    async fn create_filing(
        &self,
        request: Request<pb::CreateFilingRequest>,
    ) -> Result<Response<pb::CreateFilingResponse>, Status> {
        rpc!(request, rules::FILERS, |ctx, req| {
            if !req.request_id.is_empty() {
                idempotency::validate_request_id(&req.request_id, "request_id")?;
            }
            let src = req
                .filing
                .as_ref()
                .ok_or_else(|| ApiError::invalid("filing", "is required"))?;
            let institution = match ctx.role() {
                mosharekat_platform::auth::Role::Institution => {
                    if src.institution.is_empty() {
                        None
                    } else {
                        // Not its own (or not a name at all): refused as not its own.
                        Some(InstitutionId::from_name(&src.institution).ok_or_else(|| {
                            ApiError::PermissionDenied(
                                "an institution files only in its own name".into(),
                            )
                        })?)
                    }
                }
                _ => Some(InstitutionId::parse(
                    &src.institution,
                    "filing.institution",
                )?),
            };
            let fields = filing_patch(src, FILING_FIELDS, "filing")?;
            Ok(self
                .create_filing(&ctx, &req.request_id, &req, institution, fields, |s| {
                    pb::CreateFilingResponse {
                        filing: Some(filing(s)),
                    }
                })
                .await?)
        })
    }

    #[tracing::instrument(skip_all)]
    async fn get_filing(
        &self,
        request: Request<pb::GetFilingRequest>,
    ) -> Result<Response<pb::GetFilingResponse>, Status> {
        rpc!(request, rules::FILING_READERS, |ctx, req| {
            let id = FilingId::parse(&req.name, "name")?;
            let s = self.get_filing(&ctx, &id).await?;
            Ok(pb::GetFilingResponse {
                filing: Some(filing(&s)),
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn list_filings(
        &self,
        request: Request<pb::ListFilingsRequest>,
    ) -> Result<Response<pb::ListFilingsResponse>, Status> {
        rpc!(request, rules::FILING_READERS, |ctx, req| {
            let page = page(req.page_size, &req.page_token)?;
            let kind = filter(req.kind, FilingKind::from_code, "kind")?;
            let state = filter(req.state, FilingState::from_code, "state")?;
            let area = filter(req.activity_area, area_from_code, "activity_area")?;
            let submitted_after = time(&req.submitted_after, "submitted_after")?;
            let submitted_before = time(&req.submitted_before, "submitted_before")?;
            let institution = institution_filter(&req.institution, "institution")?;
            if req.authority.chars().count() > 200 {
                return Err(
                    ApiError::invalid("authority", "must be at most 200 characters").into(),
                );
            }
            let f = FilingFilter {
                institution,
                kind,
                state,
                area,
                authority: req.authority.clone(),
                submitted_after,
                submitted_before,
            };
            let (shown, next_page_token) = self.list_filings(&ctx, f, page).await?;
            Ok(pb::ListFilingsResponse {
                filings: shown.iter().map(filing).collect(),
                next_page_token,
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn update_filing(
        &self,
        request: Request<pb::UpdateFilingRequest>,
    ) -> Result<Response<pb::UpdateFilingResponse>, Status> {
        rpc!(request, rules::FILERS, |ctx, req| {
            let src = req
                .filing
                .as_ref()
                .ok_or_else(|| ApiError::invalid("filing", "is required"))?;
            let id = FilingId::parse(&src.name, "filing.name")?;
            let paths: Vec<&str> = req
                .update_mask
                .as_ref()
                .map(|m| m.paths.iter().map(String::as_str).collect())
                .unwrap_or_default();
            let patch = filing_patch(src, &paths, "filing")?;
            let s = self.update_filing(&ctx, &id, &src.etag, patch).await?;
            Ok(pb::UpdateFilingResponse {
                filing: Some(filing(&s)),
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn submit_filing(
        &self,
        request: Request<pb::SubmitFilingRequest>,
    ) -> Result<Response<pb::SubmitFilingResponse>, Status> {
        rpc!(request, rules::FILERS, |ctx, req| {
            let id = FilingId::parse(&req.name, "name")?;
            let s = self.submit_filing(&ctx, &id, &req.etag).await?;
            Ok(pb::SubmitFilingResponse {
                filing: Some(filing(&s)),
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn withdraw_filing(
        &self,
        request: Request<pb::WithdrawFilingRequest>,
    ) -> Result<Response<pb::WithdrawFilingResponse>, Status> {
        rpc!(request, rules::FILERS, |ctx, req| {
            let id = FilingId::parse(&req.name, "name")?;
            let why = reason(&req.reason, false, "reason")?;
            let s = self.withdraw_filing(&ctx, &id, &req.etag, why).await?;
            Ok(pb::WithdrawFilingResponse {
                filing: Some(filing(&s)),
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn register_filing(
        &self,
        request: Request<pb::RegisterFilingRequest>,
    ) -> Result<Response<pb::RegisterFilingResponse>, Status> {
        rpc!(request, rules::CLERKS, |ctx, req| {
            let id = FilingId::parse(&req.name, "name")?;
            let case = mosharekat_persian::digits::to_ascii_digits(req.case_number.trim());
            if case.is_empty()
                || case.len() > 64
                || !case
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '/'))
            {
                return Err(ApiError::invalid(
                    "case_number",
                    "must be 1 to 64 letters, digits, - or /",
                )
                .into());
            }
            let s = self.register_filing(&ctx, &id, &req.etag, case).await?;
            Ok(pb::RegisterFilingResponse {
                filing: Some(filing(&s)),
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn reject_filing(
        &self,
        request: Request<pb::RejectFilingRequest>,
    ) -> Result<Response<pb::RejectFilingResponse>, Status> {
        rpc!(request, rules::CLERKS, |ctx, req| {
            let id = FilingId::parse(&req.name, "name")?;
            let why = reason(&req.reason, true, "reason")?;
            let s = self.reject_filing(&ctx, &id, &req.etag, why).await?;
            Ok(pb::RejectFilingResponse {
                filing: Some(filing(&s)),
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn close_filing(
        &self,
        request: Request<pb::CloseFilingRequest>,
    ) -> Result<Response<pb::CloseFilingResponse>, Status> {
        rpc!(request, rules::CLERKS, |ctx, req| {
            let id = FilingId::parse(&req.name, "name")?;
            let outcome = reason(&req.outcome, true, "outcome")?;
            let s = self.close_filing(&ctx, &id, &req.etag, outcome).await?;
            Ok(pb::CloseFilingResponse {
                filing: Some(filing(&s)),
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn seal_filing_party(
        &self,
        request: Request<pb::SealFilingPartyRequest>,
    ) -> Result<Response<pb::SealFilingPartyResponse>, Status> {
        rpc!(request, rules::CLERKS, |ctx, req| {
            let id = FilingId::parse(&req.name, "name")?;
            let index = party_index(req.party_index)?;
            let s = self.seal_filing_party(&ctx, &id, &req.etag, index).await?;
            Ok(pb::SealFilingPartyResponse {
                filing: Some(filing(&s)),
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn create_referral(
        &self,
        request: Request<pb::CreateReferralRequest>,
    ) -> Result<Response<pb::CreateReferralResponse>, Status> {
        rpc!(request, rules::REFERRERS, |ctx, req| {
            if !req.request_id.is_empty() {
                idempotency::validate_request_id(&req.request_id, "request_id")?;
            }
            let src = req
                .referral
                .as_ref()
                .ok_or_else(|| ApiError::invalid("referral", "is required"))?;
            let new = new_referral(src)?;
            Ok(self
                .create_referral(&ctx, &req.request_id, &req, new, |s| {
                    pb::CreateReferralResponse {
                        referral: Some(referral(s)),
                    }
                })
                .await?)
        })
    }

    #[tracing::instrument(skip_all)]
    async fn get_referral(
        &self,
        request: Request<pb::GetReferralRequest>,
    ) -> Result<Response<pb::GetReferralResponse>, Status> {
        rpc!(request, rules::REFERRAL_READERS, |ctx, req| {
            let id = ReferralId::parse(&req.name, "name")?;
            let s = self.get_referral(&ctx, &id).await?;
            Ok(pb::GetReferralResponse {
                referral: Some(referral(&s)),
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn list_referrals(
        &self,
        request: Request<pb::ListReferralsRequest>,
    ) -> Result<Response<pb::ListReferralsResponse>, Status> {
        rpc!(request, rules::REFERRAL_READERS, |ctx, req| {
            let page = page(req.page_size, &req.page_token)?;
            let source = filter(req.source, ReferralSource::from_code, "source")?;
            let kind = filter(req.kind, ReferralKind::from_code, "kind")?;
            let state = filter(req.state, ReferralState::from_code, "state")?;
            let area = filter(req.activity_area, area_from_code, "activity_area")?;
            let institution = institution_filter(&req.institution, "institution")?;
            if req.province.chars().count() > 100 {
                return Err(ApiError::invalid("province", "must be at most 100 characters").into());
            }
            let f = ReferralFilter {
                institution,
                source,
                kind,
                state,
                area,
                province: req.province.clone(),
                overdue_only: req.overdue_only,
                answer_overdue_only: req.answer_overdue_only,
                due_within_days: match req.due_within_days {
                    None => None,
                    Some(d @ 0..=3660) => Some(d as u32),
                    Some(_) => {
                        return Err(
                            ApiError::invalid("due_within_days", "must be 0 to 3660").into()
                        );
                    }
                },
            };
            let (shown, next_page_token) = self.list_referrals(&ctx, f, page).await?;
            Ok(pb::ListReferralsResponse {
                referrals: shown.iter().map(referral).collect(),
                next_page_token,
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn accept_referral(
        &self,
        request: Request<pb::AcceptReferralRequest>,
    ) -> Result<Response<pb::AcceptReferralResponse>, Status> {
        rpc!(request, rules::HANDLERS, |ctx, req| {
            let id = ReferralId::parse(&req.name, "name")?;
            let s = self.accept_referral(&ctx, &id, &req.etag).await?;
            Ok(pb::AcceptReferralResponse {
                referral: Some(referral(&s)),
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn decline_referral(
        &self,
        request: Request<pb::DeclineReferralRequest>,
    ) -> Result<Response<pb::DeclineReferralResponse>, Status> {
        rpc!(request, rules::HANDLERS, |ctx, req| {
            let id = ReferralId::parse(&req.name, "name")?;
            let why = reason(&req.reason, true, "reason")?;
            let s = self
                .with_reason(&ctx, &id, &req.etag, ReferralAction::Decline, why)
                .await?;
            Ok(pb::DeclineReferralResponse {
                referral: Some(referral(&s)),
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn record_progress(
        &self,
        request: Request<pb::RecordProgressRequest>,
    ) -> Result<Response<pb::RecordProgressResponse>, Status> {
        rpc!(request, rules::HANDLERS, |ctx, req| {
            let id = ReferralId::parse(&req.name, "name")?;
            let entry = progress(
                req.entry
                    .as_ref()
                    .ok_or_else(|| ApiError::invalid("entry", "is required"))?,
            )?;
            let s = self.record_progress(&ctx, &id, &req.etag, entry).await?;
            Ok(pb::RecordProgressResponse {
                referral: Some(referral(&s)),
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn resolve_referral(
        &self,
        request: Request<pb::ResolveReferralRequest>,
    ) -> Result<Response<pb::ResolveReferralResponse>, Status> {
        rpc!(request, rules::HANDLERS, |ctx, req| {
            let id = ReferralId::parse(&req.name, "name")?;
            let outcome = ReferralOutcome::from_code(req.outcome).ok_or_else(|| {
                ApiError::invalid(
                    "outcome",
                    "must be RECONCILED, PARTIALLY_RECONCILED or NOT_RECONCILED",
                )
            })?;
            let why = filter(
                req.not_reconciled_reason,
                NotReconciledReason::from_code,
                "not_reconciled_reason",
            )
            .map_err(|_| ApiError::invalid("not_reconciled_reason", "is not a known reason"))?;
            if outcome == ReferralOutcome::NotReconciled && why.is_none() {
                return Err(ApiError::invalid(
                    "not_reconciled_reason",
                    "is required when the outcome is NOT_RECONCILED",
                )
                .into());
            }
            let settlement_text = reason(&req.settlement_text, false, "settlement_text")?;
            let resolution = Resolution {
                outcome,
                not_reconciled_reason: why,
                settlement_text,
            };
            let s = self
                .resolve_referral(&ctx, &id, &req.etag, resolution)
                .await?;
            Ok(pb::ResolveReferralResponse {
                referral: Some(referral(&s)),
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn return_referral(
        &self,
        request: Request<pb::ReturnReferralRequest>,
    ) -> Result<Response<pb::ReturnReferralResponse>, Status> {
        rpc!(request, rules::HANDLERS, |ctx, req| {
            let id = ReferralId::parse(&req.name, "name")?;
            let why = reason(&req.reason, true, "reason")?;
            let s = self
                .with_reason(&ctx, &id, &req.etag, ReferralAction::Return, why)
                .await?;
            Ok(pb::ReturnReferralResponse {
                referral: Some(referral(&s)),
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn extend_referral(
        &self,
        request: Request<pb::ExtendReferralRequest>,
    ) -> Result<Response<pb::ExtendReferralResponse>, Status> {
        rpc!(request, rules::REFERRERS, |ctx, req| {
            let id = ReferralId::parse(&req.name, "name")?;
            let why = reason(&req.reason, true, "reason")?;
            let due = time(&req.due_time, "due_time")?
                .ok_or_else(|| ApiError::invalid("due_time", "is required"))?;
            let s = self
                .extend_referral(&ctx, &id, &req.etag, instant(due), why)
                .await?;
            Ok(pb::ExtendReferralResponse {
                referral: Some(referral(&s)),
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn withdraw_referral(
        &self,
        request: Request<pb::WithdrawReferralRequest>,
    ) -> Result<Response<pb::WithdrawReferralResponse>, Status> {
        rpc!(request, rules::REFERRERS, |ctx, req| {
            let id = ReferralId::parse(&req.name, "name")?;
            let why = reason(&req.reason, true, "reason")?;
            let s = self
                .with_reason(&ctx, &id, &req.etag, ReferralAction::Withdraw, why)
                .await?;
            Ok(pb::WithdrawReferralResponse {
                referral: Some(referral(&s)),
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn reassign_referral(
        &self,
        request: Request<pb::ReassignReferralRequest>,
    ) -> Result<Response<pb::ReassignReferralResponse>, Status> {
        rpc!(request, rules::REFERRERS, |ctx, req| {
            let id = ReferralId::parse(&req.name, "name")?;
            let to = InstitutionId::parse(&req.institution, "institution")?;
            let mut v = Violations::new();
            let agreements = agreements(&mut v, "agreements", &req.agreements, None);
            v.into_result()?;
            let s = self
                .reassign_referral(&ctx, &id, &req.etag, to, agreements)
                .await?;
            Ok(pb::ReassignReferralResponse {
                referral: Some(referral(&s)),
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn request_extension(
        &self,
        request: Request<pb::RequestExtensionRequest>,
    ) -> Result<Response<pb::RequestExtensionResponse>, Status> {
        rpc!(request, rules::HANDLERS, |ctx, req| {
            let id = ReferralId::parse(&req.name, "name")?;
            let why = reason(&req.reason, true, "reason")?;
            let s = self.request_extension(&ctx, &id, &req.etag, why).await?;
            Ok(pb::RequestExtensionResponse {
                referral: Some(referral(&s)),
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn refuse_extension(
        &self,
        request: Request<pb::RefuseExtensionRequest>,
    ) -> Result<Response<pb::RefuseExtensionResponse>, Status> {
        rpc!(request, rules::REFERRERS, |ctx, req| {
            let id = ReferralId::parse(&req.name, "name")?;
            let why = reason(&req.reason, true, "reason")?;
            let s = self.refuse_extension(&ctx, &id, &req.etag, why).await?;
            Ok(pb::RefuseExtensionResponse {
                referral: Some(referral(&s)),
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn seal_referral_party(
        &self,
        request: Request<pb::SealReferralPartyRequest>,
    ) -> Result<Response<pb::SealReferralPartyResponse>, Status> {
        rpc!(request, rules::REFERRERS, |ctx, req| {
            let id = ReferralId::parse(&req.name, "name")?;
            let index = party_index(req.party_index)?;
            let s = self
                .seal_referral_party(&ctx, &id, &req.etag, index)
                .await?;
            Ok(pb::SealReferralPartyResponse {
                referral: Some(referral(&s)),
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn suggest_institutions(
        &self,
        request: Request<pb::SuggestInstitutionsRequest>,
    ) -> Result<Response<pb::SuggestInstitutionsResponse>, Status> {
        rpc!(request, rules::SUGGESTION_READERS, |ctx, req| {
            let mut v = Violations::new();
            let area = area(&mut v, "activity_area".into(), req.activity_area);
            let province = v
                .check("province", normalize_name(&req.province, 100))
                .unwrap_or_default();
            if req.max_results < 0 {
                v.add("max_results", "must not be negative");
            }
            let district =
                optional_name(&mut v, "judicial_district".into(), &req.judicial_district);
            v.into_result()?;
            let Some(area) = area else {
                return Err(ApiError::invalid("activity_area", "is required").into());
            };
            let max = match req.max_results {
                0 => 10,
                n => n.min(50) as usize,
            };
            let ranked = self.suggest(&ctx, area, &province, &district, max).await?;
            Ok(pb::SuggestInstitutionsResponse {
                suggestions: ranked.into_iter().map(suggestion).collect(),
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn get_statistics(
        &self,
        request: Request<pb::GetStatisticsRequest>,
    ) -> Result<Response<pb::GetStatisticsResponse>, Status> {
        rpc!(request, rules::STATISTICS_READERS, |_ctx, req| {
            let province = normalize_name(&req.province, 100)
                .map_err(|e| ApiError::invalid("province", e.to_string()))?;
            let start = time(&req.start_time, "start_time")?
                .ok_or_else(|| ApiError::invalid("start_time", "is required"))?;
            let end = time(&req.end_time, "end_time")?
                .ok_or_else(|| ApiError::invalid("end_time", "is required"))?;
            if end <= start {
                return Err(ApiError::invalid("end_time", "must be after start_time").into());
            }
            Ok(statistics(self.statistics(province, start, end).await?))
        })
    }

    #[tracing::instrument(skip_all)]
    async fn list_read_records(
        &self,
        request: Request<pb::ListReadRecordsRequest>,
    ) -> Result<Response<pb::ListReadRecordsResponse>, Status> {
        rpc!(request, rules::READ_LOG_READERS, |_ctx, req| {
            let size = pagination::page_size(req.page_size, "page_size")?;
            let resource = req.resource.trim();
            if !resource.is_empty()
                && FilingId::from_name(resource).is_none()
                && ReferralId::from_name(resource).is_none()
            {
                return Err(ApiError::invalid(
                    "resource",
                    "must be filings/{id} or referrals/{id}",
                )
                .into());
            }
            let reader = req.reader.trim();
            if reader.chars().count() > 200 {
                return Err(ApiError::invalid("reader", "must be at most 200 characters").into());
            }
            let (records, next_page_token) =
                reads::list(&self.db, resource, reader, size, &req.page_token).await?;
            Ok(pb::ListReadRecordsResponse {
                records: records.into_iter().map(Into::into).collect(),
                next_page_token,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ExtensionRequestState;

    /// The domain's numbers are the API's, name for name.
    #[test]
    fn domain_enums_match_the_api() {
        fn same<T: Copy + std::fmt::Debug>(
            all: &[T],
            code: fn(T) -> i32,
            name: fn(T) -> &'static str,
            api: fn(i32) -> Option<String>,
        ) {
            for x in all {
                assert_eq!(api(code(*x)).as_deref(), Some(name(*x)), "{x:?}");
            }
        }
        fn trimmed(s: &str, prefix: &str) -> String {
            s.trim_start_matches(prefix).to_owned()
        }
        same(FilingKind::ALL, FilingKind::code, FilingKind::as_str, |c| {
            pb::FilingKind::try_from(c)
                .ok()
                .map(|x| trimmed(x.as_str_name(), "FILING_KIND_"))
        });
        same(
            FilingState::ALL,
            FilingState::code,
            FilingState::as_str,
            |c| {
                pb::FilingState::try_from(c)
                    .ok()
                    .map(|x| trimmed(x.as_str_name(), "FILING_STATE_"))
            },
        );
        same(
            ConsentBasis::ALL,
            ConsentBasis::code,
            ConsentBasis::as_str,
            |c| {
                pb::ConsentBasis::try_from(c)
                    .ok()
                    .map(|x| trimmed(x.as_str_name(), "CONSENT_BASIS_"))
            },
        );
        same(PartyRole::ALL, PartyRole::code, PartyRole::as_str, |c| {
            common::PartyRole::try_from(c)
                .ok()
                .map(|x| trimmed(x.as_str_name(), "PARTY_ROLE_"))
        });
        same(
            ReferralSource::ALL,
            ReferralSource::code,
            ReferralSource::as_str,
            |c| {
                pb::ReferralSource::try_from(c)
                    .ok()
                    .map(|x| trimmed(x.as_str_name(), "REFERRAL_SOURCE_"))
            },
        );
        same(
            ReferralKind::ALL,
            ReferralKind::code,
            ReferralKind::as_str,
            |c| {
                pb::ReferralKind::try_from(c)
                    .ok()
                    .map(|x| trimmed(x.as_str_name(), "REFERRAL_KIND_"))
            },
        );
        same(
            ExtensionRequestState::ALL,
            ExtensionRequestState::code,
            ExtensionRequestState::as_str,
            |c| {
                pb::ExtensionRequestState::try_from(c)
                    .ok()
                    .map(|x| trimmed(x.as_str_name(), "EXTENSION_REQUEST_STATE_"))
            },
        );
        same(
            ReferralState::ALL,
            ReferralState::code,
            ReferralState::as_str,
            |c| {
                pb::ReferralState::try_from(c)
                    .ok()
                    .map(|x| trimmed(x.as_str_name(), "REFERRAL_STATE_"))
            },
        );
        same(
            ReferralOutcome::ALL,
            ReferralOutcome::code,
            ReferralOutcome::as_str,
            |c| {
                pb::ReferralOutcome::try_from(c)
                    .ok()
                    .map(|x| trimmed(x.as_str_name(), "REFERRAL_OUTCOME_"))
            },
        );
        same(
            NotReconciledReason::ALL,
            NotReconciledReason::code,
            NotReconciledReason::as_str,
            |c| {
                pb::NotReconciledReason::try_from(c)
                    .ok()
                    .map(|x| trimmed(x.as_str_name(), "NOT_RECONCILED_REASON_"))
            },
        );
    }

    #[test]
    fn filing_fields_are_checked_and_named() {
        let src = pb::Filing {
            kind: 7,
            activity_area: 0,
            authority: String::new(),
            parties: vec![common::Party {
                full_name: "x".into(),
                national_code: "123".into(),
                role: 1,
                ..Default::default()
            }],
            documents: vec![common::DocumentRef {
                title: "t".into(),
                sha256: "nope".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let ApiError::InvalidArgument(v) = filing_patch(&src, FILING_FIELDS, "filing").unwrap_err()
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
    #[test]
    fn a_sealed_party_is_masked_wherever_it_is_named() {
        let mut parties = vec![
            common::Party {
                full_name: "مريم رضايي".into(),
                national_code: "0076229645".into(),
                sealed: true,
                ..common::Party {
                    role: common::PartyRole::Victim as i32,
                    minor: true,
                    ..Default::default()
                }
            },
            common::Party {
                full_name: "حسن".into(),
                national_code: "1583250689".into(),
                ..Default::default()
            },
        ];
        let mut consents = vec![
            pb::Consent {
                party_index: 0,
                given_by: "x".into(),
                ..Default::default()
            },
            pb::Consent {
                party_index: 1,
                given_by: "x".into(),
                ..Default::default()
            },
        ];
        let mut attendees = vec!["مریم رضایی".to_owned(), "حسن".to_owned()];
        mask_sealed(&mut parties, &mut consents, &mut [&mut attendees]);
        assert_eq!(parties[0].full_name, SEALED_NAME);
        assert_eq!(parties[0].national_code, "******9645");
        assert_eq!(
            (
                parties[1].full_name.as_str(),
                parties[1].national_code.as_str()
            ),
            ("حسن", "1583250689")
        );
        assert_eq!(consents[0].given_by, SEALED_NAME);
        assert_eq!(consents[1].given_by, "x");
        // Found under Arabic or Persian letters alike.
        assert_eq!(attendees, [SEALED_NAME, "حسن"]);
    }
}
