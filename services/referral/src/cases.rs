//! The work behind the handlers: filings and referrals read, checked and changed, each
//! change in one transaction with its timeline entry and audit record.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use mosharekat_api::referral::v1 as pb;
use mosharekat_api::registry::v1::PermittedAction;
use mosharekat_persian::fold_for_search;
use mosharekat_platform::auth::Role;
use mosharekat_platform::ctx::CallContext;
use mosharekat_platform::db::WriteTxn;
use mosharekat_platform::db::{Db, check_etag, commit, from_timestamp, now_micros, to_timestamp};
use mosharekat_platform::error::ApiError;
use mosharekat_platform::{audit, idempotency};

use crate::domain::{self, DuePolicy, FilingAction, ReferralAction};
use crate::input;
use crate::reads;
use crate::store::{self, Record};
use mosharekat_registry_client::{RegistryPeer, require_eligible};

/// Everything the handlers share.
#[derive(Clone, Debug)]
pub struct Cases {
    pub(crate) db: Db,
    pub(crate) registry: RegistryPeer,
    pub(crate) due: Arc<DuePolicy>,
    pub(crate) reads: reads::ReadLog,
}

pub fn filing_state_name(s: i32) -> String {
    pb::FilingState::try_from(s)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("FILING_STATE_")
                .to_owned()
        })
        .unwrap_or_default()
}

pub fn referral_state_name(s: i32) -> String {
    pb::ReferralState::try_from(s)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("REFERRAL_STATE_")
                .to_owned()
        })
        .unwrap_or_default()
}

fn conflict(what: &str, verb: &str, state: &str) -> ApiError {
    ApiError::precondition(
        format!("{}_STATE_CONFLICT", what.to_uppercase()),
        format!("cannot {verb} a {what} that is {state}"),
        format!("این اقدام در وضعیت کنونی ({state}) ممکن نیست."),
    )
}

pub const FILING_READERS: &[Role] = &[
    Role::Admin,
    Role::Auditor,
    Role::Service,
    Role::Institution,
    Role::JudicialOfficer,
];
pub const FILERS: &[Role] = &[Role::Admin, Role::Institution];
pub const CLERKS: &[Role] = &[Role::Admin, Role::JudicialOfficer];
pub const REFERRAL_READERS: &[Role] = &[
    Role::Admin,
    Role::Auditor,
    Role::Service,
    Role::Institution,
    Role::JudicialOfficer,
    Role::CenterOfficer,
];
pub const REFERRERS: &[Role] = &[Role::Admin, Role::JudicialOfficer, Role::CenterOfficer];
pub const HANDLERS: &[Role] = &[Role::Admin, Role::Institution];

fn own_institution(ctx: &CallContext) -> String {
    format!(
        "institutions/{}",
        ctx.principal.institution.clone().unwrap_or_default()
    )
}

/// Case data is confidential: the filing institution, the addressed authority's officers
/// (once it is submitted) and administrators and auditors see a filing.
pub fn filing_visible(ctx: &CallContext, f: &pb::Filing) -> bool {
    match ctx.role() {
        Role::Admin | Role::Auditor | Role::Service => true,
        Role::Institution => f.institution == own_institution(ctx),
        Role::JudicialOfficer => {
            f.state != pb::FilingState::Draft as i32
                && ctx
                    .principal
                    .authority
                    .as_deref()
                    .is_none_or(|a| fold_for_search(a) == fold_for_search(&f.authority))
        }
        _ => false,
    }
}

/// An institution sees only the referrals assigned to it.
pub fn referral_visible(ctx: &CallContext, r: &pb::Referral) -> bool {
    ctx.role() != Role::Institution || r.institution == own_institution(ctx)
}

/// A sealed party of a filing is seen by the filing institution and the addressed
/// authority's officers only: not by administrators, auditors or other services.
pub fn sees_sealed_filing_parties(ctx: &CallContext, f: &pb::Filing) -> bool {
    match ctx.role() {
        Role::Institution => f.institution == own_institution(ctx),
        Role::JudicialOfficer => filing_visible(ctx, f),
        _ => false,
    }
}

/// A sealed party of a referral is seen by its source and its assigned institution only.
pub fn sees_sealed_referral_parties(ctx: &CallContext, r: &pb::Referral) -> bool {
    match ctx.role() {
        Role::Institution => r.institution == own_institution(ctx),
        Role::CenterOfficer | Role::JudicialOfficer => may_act_for_source(ctx, r.source),
        _ => false,
    }
}

fn party_index(raw: i32) -> Result<usize, ApiError> {
    usize::try_from(raw).map_err(|_| ApiError::invalid("party_index", "must not be negative"))
}

fn not_sealable() -> ApiError {
    ApiError::precondition(
        "PARTY_NOT_SEALABLE",
        "only a party who is a minor or a victim can be sealed",
        "فقط طرفی که کودک یا بزه‌دیده است محرمانه می‌شود.",
    )
}

/// Which sources a role refers for.
fn may_act_for_source(ctx: &CallContext, source: i32) -> bool {
    use pb::ReferralSource as S;
    match ctx.role() {
        Role::Admin => true,
        Role::CenterOfficer => source == S::DisputeResolutionCenter as i32,
        Role::JudicialOfficer => source == S::Prosecutor as i32 || source == S::Court as i32,
        _ => false,
    }
}

fn ts(t: DateTime<Utc>) -> prost_types::Timestamp {
    to_timestamp(t.timestamp_micros())
}

fn instant(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

impl Cases {
    // ---------- filings ----------

    /// The API view of a stored filing, as `ctx` may see it.
    pub async fn finish_filing<C: sea_orm::ConnectionTrait>(
        &self,
        c: &C,
        ctx: &CallContext,
        rec: Record<pb::Filing>,
    ) -> Result<pb::Filing, ApiError> {
        let mut f = rec.body;
        f.etag = rec.version.to_string();
        f.timeline = store::timeline(c, &f.name).await?;
        if !sees_sealed_filing_parties(ctx, &f) {
            domain::mask_sealed(&mut f.parties, &mut f.consents, &mut []);
        }
        Ok(f)
    }

    async fn load_filing<C: sea_orm::ConnectionTrait>(
        &self,
        c: &C,
        ctx: &CallContext,
        id: &str,
    ) -> Result<Record<pb::Filing>, ApiError> {
        let name = format!("filings/{id}");
        match store::get_filing(c, id).await? {
            Some(r) if filing_visible(ctx, &r.body) => Ok(r),
            _ => Err(ApiError::not_found("filing", name)),
        }
    }

    pub async fn get_filing(&self, ctx: &CallContext, name: &str) -> Result<pb::Filing, ApiError> {
        ctx.require(FILING_READERS)?;
        let id = input::parse_name(name, "filings", "name")?;
        let rec = self.load_filing(self.db.conn(), ctx, &id).await?;
        let f = self.finish_filing(self.db.conn(), ctx, rec).await?;
        if reads::is_recorded(ctx, &f.institution) {
            self.reads.record(ctx, &[&f.name]).await?;
        }
        Ok(f)
    }

    pub async fn create_filing(
        &self,
        ctx: &CallContext,
        req: &pb::CreateFilingRequest,
    ) -> Result<pb::CreateFilingResponse, ApiError> {
        ctx.require(FILERS)?;
        if !req.request_id.is_empty() {
            idempotency::validate_request_id(&req.request_id, "request_id")?;
        }
        let src = req
            .filing
            .as_ref()
            .ok_or_else(|| ApiError::invalid("filing", "is required"))?;
        let institution = match ctx.role() {
            Role::Institution => {
                let own = own_institution(ctx);
                if !src.institution.is_empty() && src.institution != own {
                    return Err(ApiError::PermissionDenied(
                        "an institution files only in its own name".into(),
                    ));
                }
                own
            }
            _ => {
                let id = input::parse_name(&src.institution, "institutions", "filing.institution")?;
                format!("institutions/{id}")
            }
        };
        let mut f = pb::Filing {
            institution,
            ..Default::default()
        };
        input::apply_filing(&mut f, src, input::FILING_FIELDS, "filing")?;
        let key = idempotency::Key::of(ctx, &req.request_id, req);
        let now = now_micros();
        let id = uuid::Uuid::now_v7().to_string();
        f.name = format!("filings/{id}");
        f.state = pb::FilingState::Draft as i32;
        f.create_time = Some(to_timestamp(now));
        f.update_time = f.create_time;
        let txn = self.db.begin_write().await?;
        if let Some(key) = &key
            && let Some(r) = key.lookup(&txn).await?
        {
            return Ok(r);
        }
        store::insert_filing(&txn, &id, &f, now).await?;
        store::append_timeline(&txn, &f.name, "", "DRAFT", &ctx.principal.subject, "", now).await?;
        audit::append(&txn, &ctx.audit(f.name.clone())).await?;
        // The record as written (version 1): no need to read it back.
        let rec = Record {
            id: id.clone(),
            version: 1,
            body: f,
        };
        let resp = pb::CreateFilingResponse {
            filing: Some(self.finish_filing(&txn, ctx, rec).await?),
        };
        if let Some(key) = &key {
            key.record(&txn, &resp).await?;
        }
        commit(txn).await?;
        Ok(resp)
    }

    pub async fn update_filing(
        &self,
        ctx: &CallContext,
        req: &pb::UpdateFilingRequest,
    ) -> Result<pb::Filing, ApiError> {
        ctx.require(FILERS)?;
        let src = req
            .filing
            .as_ref()
            .ok_or_else(|| ApiError::invalid("filing", "is required"))?;
        let id = input::parse_name(&src.name, "filings", "filing.name")?;
        let paths: Vec<&str> = req
            .update_mask
            .as_ref()
            .map(|m| m.paths.iter().map(String::as_str).collect())
            .unwrap_or_default();
        self.change_filing(ctx, &id, &src.etag, FilingAction::Update, "", |f| {
            input::apply_filing(f, src, &paths, "filing")
        })
        .await
    }

    /// One change of a filing: checked, applied, recorded.
    pub async fn change_filing(
        &self,
        ctx: &CallContext,
        id: &str,
        etag: &str,
        action: FilingAction,
        note: &str,
        apply: impl FnOnce(&mut pb::Filing) -> Result<(), ApiError>,
    ) -> Result<pb::Filing, ApiError> {
        let now = now_micros();
        let txn = self.db.begin_write().await?;
        let rec = self.load_filing(&txn, ctx, id).await?;
        let name = rec.body.name.clone();
        check_etag(etag, rec.version, &name)?;
        let from =
            pb::FilingState::try_from(rec.body.state).unwrap_or(pb::FilingState::Unspecified);
        let to = domain::next_filing_state(from, action)
            .ok_or_else(|| conflict("filing", action.verb(), &filing_state_name(rec.body.state)))?;
        let mut f = rec.body.clone();
        apply(&mut f)?;
        f.state = to as i32;
        f.update_time = Some(to_timestamp(now));
        if action == FilingAction::Submit {
            f.submit_time = Some(to_timestamp(now));
        }
        if !store::save_filing(&txn, id, rec.version, &f, now).await? {
            return Err(ApiError::stale(&name));
        }
        if action != FilingAction::Update {
            store::append_timeline(
                &txn,
                &name,
                &filing_state_name(from as i32),
                &filing_state_name(to as i32),
                &ctx.principal.subject,
                note,
                now,
            )
            .await?;
        }
        audit::append(&txn, &ctx.audit(name.clone())).await?;
        let saved = Record {
            id: id.to_owned(),
            version: rec.version + 1,
            body: f,
        };
        let out = self.finish_filing(&txn, ctx, saved).await?;
        commit(txn).await?;
        Ok(out)
    }

    pub async fn submit_filing(
        &self,
        ctx: &CallContext,
        name: &str,
        etag: &str,
    ) -> Result<pb::Filing, ApiError> {
        ctx.require(FILERS)?;
        let id = input::parse_name(name, "filings", "name")?;
        // Check first, outside the write transaction: the registry is a network call away.
        let rec = self.load_filing(self.db.conn(), ctx, &id).await?;
        check_etag(etag, rec.version, name)?;
        let f = &rec.body;
        if f.state != pb::FilingState::Draft as i32 {
            return Err(conflict("filing", "submit", &filing_state_name(f.state)));
        }
        let kind = pb::FilingKind::try_from(f.kind).unwrap_or(pb::FilingKind::Unspecified);
        if let Some(why) = domain::missing_consent(kind, &f.parties, &f.consents) {
            return Err(ApiError::precondition(
                "VICTIM_CONSENT_REQUIRED",
                format!(
                    "the victim's consent is required (Criminal Procedure Code art. 66, note 1): {why}"
                ),
                "برای این شکایت یا اعلام جرم رضایت بزه‌دیده (یا ولی یا قیم او) باید ثبت شود.",
            ));
        }
        let answer = self
            .registry
            .eligibility(
                ctx,
                &f.institution,
                domain::action_for(kind),
                f.activity_area,
                "",
            )
            .await?;
        require_eligible(&answer, "file this")?;
        // The filing must be as it was when checked.
        let version = rec.version.to_string();
        self.change_filing(ctx, &id, &version, FilingAction::Submit, "", |_| Ok(()))
            .await
    }

    pub async fn withdraw_filing(
        &self,
        ctx: &CallContext,
        name: &str,
        etag: &str,
        reason: &str,
    ) -> Result<pb::Filing, ApiError> {
        ctx.require(FILERS)?;
        let id = input::parse_name(name, "filings", "name")?;
        let reason = input::reason(reason, false, "reason")?;
        self.change_filing(ctx, &id, etag, FilingAction::Withdraw, &reason, |_| Ok(()))
            .await
    }

    pub async fn register_filing(
        &self,
        ctx: &CallContext,
        name: &str,
        etag: &str,
        case_number: &str,
    ) -> Result<pb::Filing, ApiError> {
        ctx.require(CLERKS)?;
        let id = input::parse_name(name, "filings", "name")?;
        let case = mosharekat_persian::digits::to_ascii_digits(case_number.trim());
        if case.is_empty()
            || case.len() > 64
            || !case
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '/'))
        {
            return Err(ApiError::invalid(
                "case_number",
                "must be 1 to 64 letters, digits, - or /",
            ));
        }
        let rec = self.load_filing(self.db.conn(), ctx, &id).await?;
        if store::case_number_taken(self.db.conn(), &rec.body.authority, &case).await? {
            return Err(ApiError::already_exists(
                "case number",
                format!("{case} at {}", rec.body.authority),
            ));
        }
        let note = format!("case number {case}");
        self.change_filing(ctx, &id, etag, FilingAction::Register, &note, |f| {
            f.case_number = case.clone();
            Ok(())
        })
        .await
    }

    pub async fn reject_filing(
        &self,
        ctx: &CallContext,
        name: &str,
        etag: &str,
        reason: &str,
    ) -> Result<pb::Filing, ApiError> {
        ctx.require(CLERKS)?;
        let id = input::parse_name(name, "filings", "name")?;
        let reason = input::reason(reason, true, "reason")?;
        self.change_filing(ctx, &id, etag, FilingAction::Reject, &reason.clone(), |f| {
            f.rejection_reason = reason;
            Ok(())
        })
        .await
    }

    pub async fn close_filing(
        &self,
        ctx: &CallContext,
        name: &str,
        etag: &str,
        outcome: &str,
    ) -> Result<pb::Filing, ApiError> {
        ctx.require(CLERKS)?;
        let id = input::parse_name(name, "filings", "name")?;
        let outcome = input::reason(outcome, true, "outcome")?;
        self.change_filing(ctx, &id, etag, FilingAction::Close, "", |f| {
            f.outcome = outcome;
            Ok(())
        })
        .await
    }

    /// Seals a minor or victim party of a filing, for the addressed authority: its name
    /// and national code are then masked for every reader but the filing institution and
    /// the authority. Sealing a sealed party changes nothing.
    pub async fn seal_filing_party(
        &self,
        ctx: &CallContext,
        req: &pb::SealFilingPartyRequest,
    ) -> Result<pb::Filing, ApiError> {
        ctx.require(CLERKS)?;
        let id = input::parse_name(&req.name, "filings", "name")?;
        let index = party_index(req.party_index)?;
        let rec = self.load_filing(self.db.conn(), ctx, &id).await?;
        check_etag(&req.etag, rec.version, &req.name)?;
        let party = rec.body.parties.get(index).ok_or_else(|| {
            ApiError::invalid(
                "party_index",
                "must be the index of one of the filing's parties",
            )
        })?;
        if !domain::sealable(party) {
            return Err(not_sealable());
        }
        if party.sealed {
            return self.finish_filing(self.db.conn(), ctx, rec).await;
        }
        let note = format!("parties[{index}] sealed");
        self.change_filing(
            ctx,
            &id,
            &rec.version.to_string(),
            FilingAction::Seal,
            &note,
            |f| {
                if let Some(p) = f.parties.get_mut(index) {
                    p.sealed = true;
                }
                Ok(())
            },
        )
        .await
    }

    // ---------- referrals ----------

    /// The API view of a stored referral, as `ctx` may see it.
    pub async fn finish_referral<C: sea_orm::ConnectionTrait>(
        &self,
        c: &C,
        ctx: &CallContext,
        rec: Record<pb::Referral>,
    ) -> Result<pb::Referral, ApiError> {
        let mut r = rec.body;
        r.etag = rec.version.to_string();
        r.timeline = store::timeline(c, &r.name).await?;
        if !sees_sealed_referral_parties(ctx, &r) {
            let mut attendees: Vec<&mut Vec<String>> =
                r.progress.iter_mut().map(|p| &mut p.attendees).collect();
            domain::mask_sealed(&mut r.parties, &mut [], &mut attendees);
        }
        let state = pb::ReferralState::try_from(r.state).unwrap_or(pb::ReferralState::Unspecified);
        let due = r.due_time.as_ref().and_then(from_timestamp).map(instant);
        r.overdue = domain::is_overdue(state, due, Utc::now());
        Ok(r)
    }

    async fn load_referral<C: sea_orm::ConnectionTrait>(
        &self,
        c: &C,
        ctx: &CallContext,
        id: &str,
    ) -> Result<Record<pb::Referral>, ApiError> {
        match store::get_referral(c, id).await? {
            Some(r) if referral_visible(ctx, &r.body) => Ok(r),
            _ => Err(ApiError::not_found("referral", format!("referrals/{id}"))),
        }
    }

    pub async fn get_referral(
        &self,
        ctx: &CallContext,
        name: &str,
    ) -> Result<pb::Referral, ApiError> {
        ctx.require(REFERRAL_READERS)?;
        let id = input::parse_name(name, "referrals", "name")?;
        let rec = self.load_referral(self.db.conn(), ctx, &id).await?;
        let r = self.finish_referral(self.db.conn(), ctx, rec).await?;
        if reads::is_recorded(ctx, &r.institution) {
            self.reads.record(ctx, &[&r.name]).await?;
        }
        Ok(r)
    }

    pub async fn create_referral(
        &self,
        ctx: &CallContext,
        req: &pb::CreateReferralRequest,
    ) -> Result<pb::CreateReferralResponse, ApiError> {
        ctx.require(REFERRERS)?;
        if !req.request_id.is_empty() {
            idempotency::validate_request_id(&req.request_id, "request_id")?;
        }
        let src = req
            .referral
            .as_ref()
            .ok_or_else(|| ApiError::invalid("referral", "is required"))?;
        let mut r = input::parse_referral(src)?;
        if !may_act_for_source(ctx, r.source) {
            return Err(ApiError::PermissionDenied(format!(
                "role {} does not refer for this source",
                ctx.role()
            )));
        }
        let key = idempotency::Key::of(ctx, &req.request_id, req);
        // A retry answers before the peer call, from a read: the write below checks again.
        if let Some(key) = &key
            && let Some(r) = key.lookup(self.db.conn()).await?
        {
            return Ok(r);
        }
        let answer = self
            .registry
            .eligibility(
                ctx,
                &r.institution,
                PermittedAction::AcceptReferrals,
                r.activity_area,
                &r.province,
            )
            .await?;
        require_eligible(&answer, "take referrals in this area")?;
        let now = now_micros();
        let id = uuid::Uuid::now_v7().to_string();
        r.name = format!("referrals/{id}");
        r.state = pb::ReferralState::Offered as i32;
        r.create_time = Some(to_timestamp(now));
        r.update_time = r.create_time;
        let txn = self.db.begin_write().await?;
        if let Some(key) = &key
            && let Some(r) = key.lookup(&txn).await?
        {
            return Ok(r);
        }
        store::insert_referral(&txn, &id, &r, now).await?;
        store::append_timeline(
            &txn,
            &r.name,
            "",
            "OFFERED",
            &ctx.principal.subject,
            &r.institution,
            now,
        )
        .await?;
        audit::append(&txn, &ctx.audit(r.name.clone())).await?;
        // The record as written (version 1): no need to read it back.
        let rec = Record {
            id: id.clone(),
            version: 1,
            body: r,
        };
        let resp = pb::CreateReferralResponse {
            referral: Some(self.finish_referral(&txn, ctx, rec).await?),
        };
        if let Some(key) = &key {
            key.record(&txn, &resp).await?;
        }
        commit(txn).await?;
        Ok(resp)
    }

    /// One change of a referral: checked, applied, recorded.
    pub async fn change_referral(
        &self,
        ctx: &CallContext,
        id: &str,
        etag: &str,
        action: ReferralAction,
        note: &str,
        apply: impl FnOnce(&mut pb::Referral, i64) -> Result<(), ApiError>,
    ) -> Result<pb::Referral, ApiError> {
        let now = now_micros();
        let txn = self.db.begin_write().await?;
        let rec = self.load_referral(&txn, ctx, id).await?;
        let name = rec.body.name.clone();
        check_etag(etag, rec.version, &name)?;
        authorise_referral_action(ctx, &rec.body, action)?;
        let from =
            pb::ReferralState::try_from(rec.body.state).unwrap_or(pb::ReferralState::Unspecified);
        let to = domain::next_referral_state(from, action).ok_or_else(|| {
            conflict(
                "referral",
                action.verb(),
                &referral_state_name(rec.body.state),
            )
        })?;
        let mut r = rec.body.clone();
        apply(&mut r, now)?;
        r.state = to as i32;
        r.update_time = Some(to_timestamp(now));
        if !store::save_referral(&txn, id, rec.version, &r, now).await? {
            return Err(ApiError::stale(&name));
        }
        store::append_timeline(
            &txn,
            &name,
            &referral_state_name(from as i32),
            &referral_state_name(to as i32),
            &ctx.principal.subject,
            note,
            now,
        )
        .await?;
        audit::append(&txn, &ctx.audit(name.clone())).await?;
        let saved = Record {
            id: id.to_owned(),
            version: rec.version + 1,
            body: r,
        };
        let out = self.finish_referral(&txn, ctx, saved).await?;
        commit(txn).await?;
        Ok(out)
    }

    pub async fn accept_referral(
        &self,
        ctx: &CallContext,
        name: &str,
        etag: &str,
    ) -> Result<pb::Referral, ApiError> {
        ctx.require(HANDLERS)?;
        let id = input::parse_name(name, "referrals", "name")?;
        let rec = self.load_referral(self.db.conn(), ctx, &id).await?;
        check_etag(etag, rec.version, name)?;
        authorise_referral_action(ctx, &rec.body, ReferralAction::Accept)?;
        if rec.body.state != pb::ReferralState::Offered as i32 {
            return Err(conflict(
                "referral",
                "accept",
                &referral_state_name(rec.body.state),
            ));
        }
        let answer = self
            .registry
            .eligibility(
                ctx,
                &rec.body.institution,
                PermittedAction::AcceptReferrals,
                rec.body.activity_area,
                &rec.body.province,
            )
            .await?;
        require_eligible(&answer, "take referrals in this area")?;
        let kind =
            pb::ReferralKind::try_from(rec.body.kind).unwrap_or(pb::ReferralKind::Unspecified);
        let due = self.due.clone();
        self.change_referral(
            ctx,
            &id,
            &rec.version.to_string(),
            ReferralAction::Accept,
            "",
            move |r, now| {
                let accepted = instant(now);
                r.accept_time = Some(ts(accepted));
                r.due_time = Some(ts(due.due(kind, accepted)));
                Ok(())
            },
        )
        .await
    }

    pub async fn decline_referral(
        &self,
        ctx: &CallContext,
        name: &str,
        etag: &str,
        reason: &str,
    ) -> Result<pb::Referral, ApiError> {
        ctx.require(HANDLERS)?;
        let id = input::parse_name(name, "referrals", "name")?;
        let reason = input::reason(reason, true, "reason")?;
        self.change_referral(
            ctx,
            &id,
            etag,
            ReferralAction::Decline,
            &reason.clone(),
            |r, _| {
                r.state_reason = reason;
                Ok(())
            },
        )
        .await
    }

    pub async fn record_progress(
        &self,
        ctx: &CallContext,
        req: &pb::RecordProgressRequest,
    ) -> Result<pb::Referral, ApiError> {
        ctx.require(HANDLERS)?;
        let id = input::parse_name(&req.name, "referrals", "name")?;
        let entry = input::progress(
            req.entry
                .as_ref()
                .ok_or_else(|| ApiError::invalid("entry", "is required"))?,
        )?;
        let subject = ctx.principal.subject.clone();
        self.change_referral(
            ctx,
            &id,
            &req.etag,
            ReferralAction::Progress,
            "session recorded",
            move |r, now| {
                r.progress.push(pb::ProgressEntry {
                    recorded_by: subject,
                    record_time: Some(to_timestamp(now)),
                    ..entry
                });
                Ok(())
            },
        )
        .await
    }

    pub async fn resolve_referral(
        &self,
        ctx: &CallContext,
        req: &pb::ResolveReferralRequest,
    ) -> Result<pb::Referral, ApiError> {
        ctx.require(HANDLERS)?;
        let id = input::parse_name(&req.name, "referrals", "name")?;
        let outcome =
            pb::ReferralOutcome::try_from(req.outcome).unwrap_or(pb::ReferralOutcome::Unspecified);
        if outcome == pb::ReferralOutcome::Unspecified {
            return Err(ApiError::invalid(
                "outcome",
                "must be RECONCILED, PARTIALLY_RECONCILED or NOT_RECONCILED",
            ));
        }
        let why = pb::NotReconciledReason::try_from(req.not_reconciled_reason)
            .unwrap_or(pb::NotReconciledReason::Unspecified);
        if req.not_reconciled_reason != 0 && why == pb::NotReconciledReason::Unspecified {
            return Err(ApiError::invalid(
                "not_reconciled_reason",
                "is not a known reason",
            ));
        }
        if outcome == pb::ReferralOutcome::NotReconciled
            && why == pb::NotReconciledReason::Unspecified
        {
            return Err(ApiError::invalid(
                "not_reconciled_reason",
                "is required when the outcome is NOT_RECONCILED",
            ));
        }
        let settlement = input::reason(&req.settlement_text, false, "settlement_text")?;
        let note = outcome
            .as_str_name()
            .trim_start_matches("REFERRAL_OUTCOME_")
            .to_owned();
        self.change_referral(
            ctx,
            &id,
            &req.etag,
            ReferralAction::Resolve,
            &note,
            move |r, now| {
                r.outcome = outcome as i32;
                r.not_reconciled_reason = why as i32;
                r.settlement_text = settlement;
                r.resolve_time = Some(to_timestamp(now));
                Ok(())
            },
        )
        .await
    }

    pub async fn return_referral(
        &self,
        ctx: &CallContext,
        name: &str,
        etag: &str,
        reason: &str,
    ) -> Result<pb::Referral, ApiError> {
        ctx.require(HANDLERS)?;
        let id = input::parse_name(name, "referrals", "name")?;
        let reason = input::reason(reason, true, "reason")?;
        self.change_referral(
            ctx,
            &id,
            etag,
            ReferralAction::Return,
            &reason.clone(),
            |r, _| {
                r.state_reason = reason;
                Ok(())
            },
        )
        .await
    }

    pub async fn extend_referral(
        &self,
        ctx: &CallContext,
        req: &pb::ExtendReferralRequest,
    ) -> Result<pb::Referral, ApiError> {
        ctx.require(REFERRERS)?;
        let id = input::parse_name(&req.name, "referrals", "name")?;
        let reason = input::reason(&req.reason, true, "reason")?;
        let new_due = req
            .due_time
            .as_ref()
            .ok_or_else(|| ApiError::invalid("due_time", "is required"))
            .and_then(|t| {
                from_timestamp(t).ok_or_else(|| {
                    ApiError::invalid("due_time", "must be a time between 1900 and 2200")
                })
            })?;
        self.change_referral(
            ctx,
            &id,
            &req.etag,
            ReferralAction::Extend,
            &reason.clone(),
            move |r, _| {
                if r.extended {
                    return Err(ApiError::precondition(
                        "ALREADY_EXTENDED",
                        "the due time may be extended only once (mediation regulation art. 28)",
                        "مهلت رسیدگی فقط یک بار قابل تمدید است.",
                    ));
                }
                let due = r
                    .due_time
                    .as_ref()
                    .and_then(from_timestamp)
                    .map(instant)
                    .unwrap_or_default();
                let new = instant(new_due);
                if new <= due || new > domain::max_extension(due) {
                    return Err(ApiError::invalid(
                        "due_time",
                        "must be later than the current due time and at most three months after it",
                    ));
                }
                r.due_time = Some(ts(new));
                r.extended = true;
                r.extension_reason = reason;
                Ok(())
            },
        )
        .await
    }

    pub async fn withdraw_referral(
        &self,
        ctx: &CallContext,
        name: &str,
        etag: &str,
        reason: &str,
    ) -> Result<pb::Referral, ApiError> {
        ctx.require(REFERRERS)?;
        let id = input::parse_name(name, "referrals", "name")?;
        let reason = input::reason(reason, true, "reason")?;
        self.change_referral(
            ctx,
            &id,
            etag,
            ReferralAction::Withdraw,
            &reason.clone(),
            |r, _| {
                r.state_reason = reason;
                Ok(())
            },
        )
        .await
    }

    pub async fn reassign_referral(
        &self,
        ctx: &CallContext,
        req: &pb::ReassignReferralRequest,
    ) -> Result<pb::Referral, ApiError> {
        ctx.require(REFERRERS)?;
        let id = input::parse_name(&req.name, "referrals", "name")?;
        let to = format!(
            "institutions/{}",
            input::parse_name(&req.institution, "institutions", "institution")?
        );
        let rec = self.load_referral(self.db.conn(), ctx, &id).await?;
        check_etag(&req.etag, rec.version, &req.name)?;
        authorise_referral_action(ctx, &rec.body, ReferralAction::Reassign)?;
        if domain::next_referral_state(
            pb::ReferralState::try_from(rec.body.state).unwrap_or(pb::ReferralState::Unspecified),
            ReferralAction::Reassign,
        )
        .is_none()
        {
            return Err(conflict(
                "referral",
                "reassign",
                &referral_state_name(rec.body.state),
            ));
        }
        if to == rec.body.institution {
            return Err(ApiError::invalid(
                "institution",
                "must be another institution than the current one",
            ));
        }
        let answer = self
            .registry
            .eligibility(
                ctx,
                &to,
                PermittedAction::AcceptReferrals,
                rec.body.activity_area,
                &rec.body.province,
            )
            .await?;
        require_eligible(&answer, "take referrals in this area")?;
        let note = format!("{} → {to}", rec.body.institution);
        self.change_referral(
            ctx,
            &id,
            &rec.version.to_string(),
            ReferralAction::Reassign,
            &note,
            move |r, _| {
                r.institution = to;
                r.accept_time = None;
                r.due_time = None;
                r.extended = false;
                r.extension_reason.clear();
                r.state_reason.clear();
                r.progress.clear();
                Ok(())
            },
        )
        .await
    }

    /// Seals a minor or victim party of a referral, for its source: its name and national
    /// code are then masked for every reader but the source and the assigned
    /// institution. Sealing a sealed party changes nothing.
    pub async fn seal_referral_party(
        &self,
        ctx: &CallContext,
        req: &pb::SealReferralPartyRequest,
    ) -> Result<pb::Referral, ApiError> {
        ctx.require(REFERRERS)?;
        let id = input::parse_name(&req.name, "referrals", "name")?;
        let index = party_index(req.party_index)?;
        let rec = self.load_referral(self.db.conn(), ctx, &id).await?;
        check_etag(&req.etag, rec.version, &req.name)?;
        authorise_referral_action(ctx, &rec.body, ReferralAction::Seal)?;
        let party = rec.body.parties.get(index).ok_or_else(|| {
            ApiError::invalid(
                "party_index",
                "must be the index of one of the referral's parties",
            )
        })?;
        if !domain::sealable(party) {
            return Err(not_sealable());
        }
        if party.sealed {
            return self.finish_referral(self.db.conn(), ctx, rec).await;
        }
        let note = format!("parties[{index}] sealed");
        self.change_referral(
            ctx,
            &id,
            &rec.version.to_string(),
            ReferralAction::Seal,
            &note,
            move |r, _| {
                if let Some(p) = r.parties.get_mut(index) {
                    p.sealed = true;
                }
                Ok(())
            },
        )
        .await
    }

    /// Recalls every open referral of an institution that lost its licence (inside the
    /// event consumer's transaction).
    pub async fn recall_open_referrals(
        txn: &WriteTxn,
        institution_id: &str,
        why: &str,
        ctx: &CallContext,
    ) -> Result<usize, ApiError> {
        let now = now_micros();
        let mut n = 0;
        for rec in store::referrals_of(txn, institution_id).await? {
            let from = pb::ReferralState::try_from(rec.body.state)
                .unwrap_or(pb::ReferralState::Unspecified);
            let Some(to) = domain::next_referral_state(from, ReferralAction::Recall) else {
                continue;
            };
            let mut r = rec.body.clone();
            r.state = to as i32;
            r.state_reason = why.to_owned();
            r.update_time = Some(to_timestamp(now));
            if !store::save_referral(txn, &rec.id, rec.version, &r, now).await? {
                return Err(ApiError::stale(&r.name));
            }
            store::append_timeline(
                txn,
                &r.name,
                &referral_state_name(from as i32),
                "RECALLED",
                "system",
                why,
                now,
            )
            .await?;
            audit::append(txn, &ctx.audit(r.name.clone())).await?;
            n += 1;
        }
        Ok(n)
    }
}

/// Who may do what to a referral: the assigned institution handles it, the source
/// extends, withdraws and reassigns it; an administrator does all.
fn authorise_referral_action(
    ctx: &CallContext,
    r: &pb::Referral,
    action: ReferralAction,
) -> Result<(), ApiError> {
    use ReferralAction as A;
    let by_institution = matches!(
        action,
        A::Accept | A::Decline | A::Progress | A::Resolve | A::Return
    );
    let ok = match ctx.role() {
        Role::Admin => true,
        Role::Institution => by_institution && referral_visible(ctx, r),
        Role::CenterOfficer | Role::JudicialOfficer => {
            !by_institution && may_act_for_source(ctx, r.source)
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(ApiError::PermissionDenied(format!(
            "role {} may not {} this referral",
            ctx.role(),
            action.verb()
        )))
    }
}
