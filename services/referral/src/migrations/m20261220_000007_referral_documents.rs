//! Filings and referrals out of the API's encoding: each row's `body` (the prost encoding
//! of `pb::Filing` / `pb::Referral`, as v1 stored them) is decoded and written as the
//! service's own versioned document in `doc`, then `body` is dropped. This is the one
//! place that knows the old encoding.

use chrono::{DateTime, Utc};
use mosharekat_api::common::v1 as common;
use mosharekat_api::referral::v1 as pb;
use mosharekat_persian::NationalCode;
use mosharekat_platform::db::from_timestamp;
use prost::Message;
use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, Statement};
use sea_orm_migration::prelude::*;

use crate::model::{
    ActivityArea, Consent, ConsentBasis, Document, Filing, FilingKind, FilingState,
    NotReconciledReason, Party, PartyRole, ProgressEntry, Referral, ReferralKind, ReferralOutcome,
    ReferralSource, ReferralState, Unknown,
};
use crate::names::{FilingId, InstitutionId, ReferralId};
use crate::store;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Rows converted per round trip.
const BATCH: i64 = 500;

type Bad = String;

fn time(t: &Option<prost_types::Timestamp>, what: &str) -> Result<DateTime<Utc>, Bad> {
    opt_time(t).and_then(|t| t.ok_or_else(|| format!("{what} is missing")))
}

fn opt_time(t: &Option<prost_types::Timestamp>) -> Result<Option<DateTime<Utc>>, Bad> {
    t.as_ref()
        .map(|t| {
            from_timestamp(t)
                .and_then(DateTime::from_timestamp_micros)
                .ok_or_else(|| "a time out of range".to_owned())
        })
        .transpose()
}

fn code<T>(raw: i32, from: fn(i32) -> Option<T>, what: &str) -> Result<T, Bad> {
    from(raw).ok_or_else(|| format!("{what} {raw} is not known"))
}

fn party(p: &common::Party) -> Result<Party, Bad> {
    Ok(Party {
        full_name: p.full_name.clone(),
        national_code: if p.national_code.is_empty() {
            None
        } else {
            Some(NationalCode::parse(&p.national_code).map_err(|e| e.to_string())?)
        },
        role: code(p.role, PartyRole::from_code, "party role")?,
        minor: p.minor,
        legally_incapacitated: p.legally_incapacitated,
        guardian_is_accused: p.guardian_is_accused,
        sealed: p.sealed,
    })
}

fn document(d: &common::DocumentRef) -> Document {
    Document {
        title: d.title.clone(),
        sha256: d.sha256.clone(),
        size_bytes: d.size_bytes,
        media_type: d.media_type.clone(),
    }
}

fn institution(name: &str) -> Result<InstitutionId, Bad> {
    InstitutionId::from_name(name).ok_or_else(|| format!("institution {name:?}"))
}

/// A v1 filing as the service's domain has it.
pub fn filing(id: &str, f: &pb::Filing) -> Result<Filing, Bad> {
    Ok(Filing {
        id: FilingId::from_id(id).ok_or_else(|| format!("id {id:?}"))?,
        institution: institution(&f.institution)?,
        kind: code(f.kind, FilingKind::from_code, "filing kind")?,
        activity_area: ActivityArea(f.activity_area),
        authority: f.authority.clone(),
        province: f.province.clone(),
        subject: f.subject.clone(),
        description: f.description.clone(),
        parties: f.parties.iter().map(party).collect::<Result<_, _>>()?,
        documents: f.documents.iter().map(document).collect(),
        consents: f
            .consents
            .iter()
            .map(|c| {
                Ok(Consent {
                    party_index: usize::try_from(c.party_index)
                        .map_err(|_| "a negative party index".to_owned())?,
                    given_by: c.given_by.clone(),
                    basis: code(c.basis, ConsentBasis::from_code, "consent basis")?,
                    time: time(&c.time, "a consent's time")?,
                    document: document(
                        c.document
                            .as_ref()
                            .ok_or_else(|| "a consent's document is missing".to_owned())?,
                    ),
                })
            })
            .collect::<Result<_, Bad>>()?,
        state: code(f.state, FilingState::from_code, "filing state")?,
        case_number: Some(f.case_number.clone()).filter(|c| !c.is_empty()),
        rejection_reason: f.rejection_reason.clone(),
        outcome: f.outcome.clone(),
        create_time: time(&f.create_time, "create_time")?,
        update_time: time(&f.update_time, "update_time")?,
        submit_time: opt_time(&f.submit_time)?,
        // The row's `ref_no`, given by a later migration.
        reference: 0,
        contact: None,
        unknown: Unknown::default(),
    })
}

/// A v1 referral as the service's domain has it.
pub fn referral(id: &str, r: &pb::Referral) -> Result<Referral, Bad> {
    Ok(Referral {
        id: ReferralId::from_id(id).ok_or_else(|| format!("id {id:?}"))?,
        source: code(r.source, ReferralSource::from_code, "referral source")?,
        source_case_number: r.source_case_number.clone(),
        kind: code(r.kind, ReferralKind::from_code, "referral kind")?,
        activity_area: ActivityArea(r.activity_area),
        province: r.province.clone(),
        parties: r.parties.iter().map(party).collect::<Result<_, _>>()?,
        summary: r.summary.clone(),
        institution: institution(&r.institution)?,
        state: code(r.state, ReferralState::from_code, "referral state")?,
        due_time: opt_time(&r.due_time)?,
        // Computed before the legal calendar: the due time stands as it was.
        due: None,
        answer: None,
        extended: r.extended,
        extension_reason: r.extension_reason.clone(),
        progress: r
            .progress
            .iter()
            .map(|p| {
                Ok(ProgressEntry {
                    session_time: time(&p.session_time, "a session's time")?,
                    attendees: p.attendees.clone(),
                    notes: p.notes.clone(),
                    recorded_by: p.recorded_by.clone(),
                    record_time: time(&p.record_time, "a session's record time")?,
                })
            })
            .collect::<Result<_, Bad>>()?,
        outcome: ReferralOutcome::from_code(r.outcome),
        not_reconciled_reason: NotReconciledReason::from_code(r.not_reconciled_reason),
        settlement_text: r.settlement_text.clone(),
        state_reason: r.state_reason.clone(),
        create_time: time(&r.create_time, "create_time")?,
        update_time: time(&r.update_time, "update_time")?,
        accept_time: opt_time(&r.accept_time)?,
        resolve_time: opt_time(&r.resolve_time)?,
        reference: 0,
        contact: None,
        // v1 recorded none of these.
        judicial_district: String::new(),
        agreements: vec![],
        chosen_by_parties: false,
        extension_request: None,
        source_office: None,
        unknown: Unknown::default(),
    })
}

#[derive(Debug, FromQueryResult)]
struct BodyRow {
    id: String,
    body: Vec<u8>,
}

/// Converts every row of `table` in batches, in id order.
async fn convert<C: ConnectionTrait>(
    c: &C,
    table: &str,
    doc: impl Fn(&str, &[u8]) -> Result<String, Bad>,
) -> Result<(), DbErr> {
    let backend = c.get_database_backend();
    let mut after = String::new();
    loop {
        let rows = BodyRow::find_by_statement(Statement::from_sql_and_values(
            backend,
            format!("SELECT id, body FROM {table} WHERE id > $1 ORDER BY id LIMIT $2"),
            [after.clone().into(), BATCH.into()],
        ))
        .all(c)
        .await?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = last.id.clone();
        for row in &rows {
            let d = doc(&row.id, &row.body)
                .map_err(|e| DbErr::Migration(format!("{table} {}: {e}", row.id)))?;
            c.execute_raw(Statement::from_sql_and_values(
                backend,
                format!("UPDATE {table} SET doc = $1 WHERE id = $2"),
                [d.into(), row.id.clone().into()],
            ))
            .await?;
        }
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let c = manager.get_connection();
        for table in ["filings", "referrals"] {
            c.execute_unprepared(&format!("ALTER TABLE {table} ADD COLUMN doc TEXT"))
                .await?;
        }
        convert(c, "filings", |id, body| {
            let f = pb::Filing::decode(body).map_err(|e| e.to_string())?;
            store::encode(&filing(id, &f)?).map_err(|e| e.to_string())
        })
        .await?;
        convert(c, "referrals", |id, body| {
            let r = pb::Referral::decode(body).map_err(|e| e.to_string())?;
            store::encode(&referral(id, &r)?).map_err(|e| e.to_string())
        })
        .await?;
        for table in ["filings", "referrals"] {
            if c.get_database_backend() == DbBackend::Postgres {
                c.execute_unprepared(&format!(
                    "ALTER TABLE {table} ALTER COLUMN doc SET NOT NULL"
                ))
                .await?;
            }
            c.execute_unprepared(&format!("ALTER TABLE {table} DROP COLUMN body"))
                .await?;
        }
        Ok(())
    }
}
