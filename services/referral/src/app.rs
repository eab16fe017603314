//! The use cases: one function per RPC, on domain types. Each change goes through the
//! platform's change path (`change::open → authorise → check_etag → save → effects →
//! commit`), each create through `change::begin_create`; a peer is called before the
//! write turn is taken. The callers' roles are checked by [`crate::api`], before the
//! request is read.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use mosharekat_calendar::{Deadline, Period, Publication, SharedCalendar, SolarDate};
use mosharekat_notify::{Template, Topic};
use mosharekat_persian::fold_for_search;
use mosharekat_platform::auth::Role;
use mosharekat_platform::change::{self, Begun, Versioned};
use mosharekat_platform::ctx::CallContext;
use mosharekat_platform::db::{Db, WriteTxn, check_etag};
use mosharekat_platform::error::ApiError;
use mosharekat_platform::pagination;
use mosharekat_registry_client::RegistryPeer;

use crate::error::{ReferralError, Result};
use crate::model::{
    ActivityArea, Consent, Contact, Document, Filing, FilingKind, FilingState, NotReconciledReason,
    Party, PartyAgreement, Permission, ProgressEntry, Referral, ReferralKind, ReferralOutcome,
    ReferralSource, ReferralState, TimelineEntry, Unknown, instant,
};
use crate::names::{FilingId, InstitutionId, ReferralId};
use crate::notices::{self, Notify};
use crate::reads;
use crate::rules::{self, DuePolicy, FilingAction, ReferralAction};
use crate::store::{self, Filings, Referrals, Where};

/// Everything the use cases share.
#[derive(Clone, Debug)]
pub struct App {
    pub(crate) db: Db,
    pub(crate) registry: RegistryPeer,
    pub(crate) due: Arc<DuePolicy>,
    pub(crate) reads: reads::ReadLog,
    /// The legal calendar every deadline is counted on; the calendar follower updates it.
    pub(crate) calendar: SharedCalendar,
    pub(crate) notify: Arc<Notify>,
}

/// A filing or referral as one caller may see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Shown<T> {
    pub value: T,
    pub version: i64,
    pub timeline: Vec<TimelineEntry>,
    /// Whether the caller sees sealed parties (else the edge masks them).
    pub sees_sealed: bool,
    /// Open and past its due time (referrals).
    pub overdue: bool,
    /// Offered and past its answer time (referrals).
    pub answer_overdue: bool,
}

/// The fields of a filing an institution writes; `None` for a field not being changed.
#[derive(Debug, Clone, Default)]
pub struct FilingPatch {
    pub kind: Option<FilingKind>,
    pub activity_area: Option<ActivityArea>,
    pub authority: Option<String>,
    pub province: Option<String>,
    pub subject: Option<String>,
    pub description: Option<String>,
    pub parties: Option<Vec<Party>>,
    pub documents: Option<Vec<Document>>,
    pub consents: Option<Vec<Consent>>,
}

/// A referral as its source sends it.
#[derive(Debug, Clone)]
pub struct NewReferral {
    pub source: ReferralSource,
    pub source_case_number: String,
    pub kind: ReferralKind,
    pub activity_area: ActivityArea,
    pub province: String,
    pub parties: Vec<Party>,
    pub summary: String,
    pub institution: InstitutionId,
    /// Empty when not given.
    pub judicial_district: String,
    pub agreements: Vec<PartyAgreement>,
    pub chosen_by_parties: bool,
}

/// A session as the institution reports it.
#[derive(Debug, Clone)]
pub struct NewProgress {
    pub session_time: DateTime<Utc>,
    pub attendees: Vec<String>,
    pub notes: String,
}

/// How a referral ended.
#[derive(Debug, Clone)]
pub struct Resolution {
    pub outcome: ReferralOutcome,
    pub not_reconciled_reason: Option<NotReconciledReason>,
    pub settlement_text: String,
}

/// A page asked for: its size and the token of the page before.
#[derive(Debug, Clone)]
pub struct Page {
    pub size: u64,
    pub token: String,
}

#[derive(Debug, Clone, Default)]
pub struct FilingFilter {
    pub institution: Option<InstitutionId>,
    pub kind: Option<FilingKind>,
    pub state: Option<FilingState>,
    pub area: Option<ActivityArea>,
    pub authority: String,
    pub submitted_after: Option<i64>,
    pub submitted_before: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct ReferralFilter {
    pub institution: Option<InstitutionId>,
    pub source: Option<ReferralSource>,
    pub kind: Option<ReferralKind>,
    pub state: Option<ReferralState>,
    pub area: Option<ActivityArea>,
    pub province: String,
    pub overdue_only: bool,
    /// Open, not passed, and the last day within this many days of today in Tehran.
    pub due_within_days: Option<u32>,
    /// Offered and past its answer time.
    pub answer_overdue_only: bool,
}

/// An institution ranked for a new referral.
#[derive(Debug, Clone, PartialEq)]
pub struct Suggestion {
    pub institution: InstitutionId,
    pub display_name: String,
    pub rank: i32,
    pub open_referrals: i64,
    pub reconciliation_rate: f64,
    pub resolved_referrals: i64,
    pub has_unextended_overdue: bool,
    /// Offers answered late or never (art. 29).
    pub late_answers: i64,
    /// Its licence is of the referral's judicial district.
    pub in_district: bool,
    pub judicial_district: String,
    pub reason: String,
}

/// An institution the registry licenses for the area and province.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub institution: InstitutionId,
    pub display_name: String,
    /// The district of the licence its eligibility rests on ('' if unknown).
    pub judicial_district: String,
}

/// The figures of a province over a period.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Statistics {
    pub province: String,
    pub filings_total: i64,
    pub filings_by_kind: BTreeMap<String, i64>,
    pub filings_by_state: BTreeMap<String, i64>,
    pub filings_by_area: BTreeMap<i32, i64>,
    pub filings_by_institution: BTreeMap<String, i64>,
    pub referrals_total: i64,
    pub referrals_by_kind: BTreeMap<String, i64>,
    pub referrals_by_state: BTreeMap<String, i64>,
    pub referrals_by_area: BTreeMap<i32, i64>,
    pub referrals_by_institution: BTreeMap<String, i64>,
    pub reconciliation_rate: f64,
    pub median_days_to_resolve: f64,
    pub overdue_count: i64,
    pub resolved_count: i64,
}

fn count<K: Ord>(keys: impl Iterator<Item = K>) -> BTreeMap<K, i64> {
    let mut m = BTreeMap::new();
    for k in keys {
        *m.entry(k).or_default() += 1;
    }
    m
}

fn entry(ctx: &CallContext, from: &str, to: &str, now: DateTime<Utc>, note: &str) -> TimelineEntry {
    TimelineEntry {
        from: from.to_owned(),
        to: to.to_owned(),
        actor: ctx.principal.subject.clone(),
        time: now,
        note: note.to_owned(),
    }
}

impl App {
    fn now(&self) -> DateTime<Utc> {
        self.db.clock().now()
    }

    fn show_filing(
        &self,
        ctx: &CallContext,
        v: Versioned<Filing>,
        timeline: Vec<TimelineEntry>,
    ) -> Shown<Filing> {
        Shown {
            sees_sealed: rules::sees_sealed_filing_parties(ctx, &v.value),
            overdue: false,
            answer_overdue: false,
            value: v.value,
            version: v.version,
            timeline,
        }
    }

    fn show_referral(
        &self,
        ctx: &CallContext,
        v: Versioned<Referral>,
        timeline: Vec<TimelineEntry>,
    ) -> Shown<Referral> {
        Shown {
            sees_sealed: rules::sees_sealed_referral_parties(ctx, &v.value),
            overdue: rules::is_overdue(v.value.state, v.value.due_time, self.now()),
            answer_overdue: rules::is_answer_overdue(&v.value, self.now()),
            value: v.value,
            version: v.version,
            timeline,
        }
    }

    /// Records the reads of `shown` by `ctx` (all but an institution's of its own).
    async fn record_reads<'a>(
        &self,
        ctx: &CallContext,
        shown: impl Iterator<Item = (&'a InstitutionId, String)>,
    ) -> Result<()> {
        let names: Vec<String> = shown
            .filter(|(owner, _)| reads::is_recorded(ctx, owner))
            .map(|(_, n)| n)
            .collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        self.reads.record(ctx, &refs).await?;
        Ok(())
    }

    /// Whether the registry lets `institution` do `permission` now; refused with its
    /// reason otherwise. The one call to the registry's eligibility per use.
    async fn require_eligible(
        &self,
        ctx: &CallContext,
        institution: &InstitutionId,
        permission: Permission,
        area: ActivityArea,
        province: &str,
        what: &'static str,
    ) -> Result<()> {
        match crate::peers::eligibility(
            &self.registry,
            ctx,
            institution,
            permission,
            area,
            province,
        )
        .await?
        {
            None => Ok(()),
            Some(reason) => Err(ReferralError::NotEligible { reason, what }),
        }
    }

    /// As [`Self::require_eligible`], and the institution's contact (the addressee of its
    /// notices) asked of the registry at the same time, both outside the write turn.
    async fn eligible_contact(
        &self,
        ctx: &CallContext,
        institution: &InstitutionId,
        permission: Permission,
        area: ActivityArea,
        province: &str,
        what: &'static str,
    ) -> Result<Option<Contact>> {
        let (eligible, contact) = tokio::join!(
            self.require_eligible(ctx, institution, permission, area, province, what),
            crate::peers::contact(&self.registry, ctx, institution),
        );
        eligible?;
        Ok(contact?)
    }

    // ---------- filings ----------

    async fn visible_filing(&self, ctx: &CallContext, id: &FilingId) -> Result<Versioned<Filing>> {
        match store::get_filing(self.db.conn(), id).await? {
            Some(v) if rules::filing_visible(ctx, &v.value) => Ok(v),
            _ => Err(ApiError::not_found("filing", id.name()).into()),
        }
    }

    pub async fn get_filing(&self, ctx: &CallContext, id: &FilingId) -> Result<Shown<Filing>> {
        let v = self.visible_filing(ctx, id).await?;
        let timeline = store::timeline(self.db.conn(), &id.name()).await?;
        let shown = self.show_filing(ctx, v, timeline);
        self.record_reads(ctx, std::iter::once((&shown.value.institution, id.name())))
            .await?;
        Ok(shown)
    }

    /// Creates a draft; `answer` makes the response (remembered for a retry of
    /// `request`, which answers it again).
    pub async fn create_filing<Req, Resp>(
        &self,
        ctx: &CallContext,
        request_id: &str,
        request: &Req,
        institution: Option<InstitutionId>,
        fields: FilingPatch,
        answer: impl FnOnce(&Shown<Filing>) -> Resp,
    ) -> Result<Resp>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        let institution = match ctx.role() {
            Role::Institution => {
                let own = rules::own_institution(ctx).ok_or_else(|| {
                    ReferralError::Forbidden("the token names no institution".into())
                })?;
                if institution.as_ref().is_some_and(|i| *i != own) {
                    return Err(ReferralError::Forbidden(
                        "an institution files only in its own name".into(),
                    ));
                }
                own
            }
            _ => institution.ok_or_else(|| {
                ReferralError::invalid("filing.institution", "must be institutions/{id}")
            })?,
        };
        let create = match change::begin_create(&self.db, ctx, request_id, request).await? {
            Begun::Replay(r) => return Ok(r),
            Begun::Fresh(c) => c,
        };
        let now = instant(create.txn().now_micros());
        let mut f = Filing {
            id: FilingId::generate(),
            institution,
            kind: fields
                .kind
                .ok_or_else(|| ReferralError::invalid("filing.kind", "is required"))?,
            activity_area: fields
                .activity_area
                .ok_or_else(|| ReferralError::invalid("filing.activity_area", "is required"))?,
            authority: String::new(),
            province: String::new(),
            subject: String::new(),
            description: String::new(),
            parties: vec![],
            documents: vec![],
            consents: vec![],
            state: FilingState::Draft,
            case_number: None,
            rejection_reason: String::new(),
            outcome: String::new(),
            create_time: now,
            update_time: now,
            submit_time: None,
            reference: store::next_reference(create.txn(), "filings").await?,
            contact: None,
            unknown: Unknown::default(),
        };
        rules::apply_filing_patch(&mut f, fields)?;
        store::insert_filing(create.txn(), &f).await?;
        let created = entry(ctx, "", FilingState::Draft.as_str(), now, "");
        store::append_timeline(create.txn(), &f.id.name(), &created).await?;
        let name = f.id.name();
        let shown = self.show_filing(
            ctx,
            Versioned {
                version: 1,
                value: f,
            },
            vec![created],
        );
        let resp = answer(&shown);
        create.commit(name, &resp).await?;
        Ok(resp)
    }

    /// One change of a filing, through the change path. `apply` changes the value, or
    /// answers false to leave it as it is.
    async fn change_filing(
        &self,
        ctx: &CallContext,
        id: &FilingId,
        etag: &str,
        action: FilingAction,
        note: &str,
        apply: impl FnOnce(&mut Filing) -> Result<bool>,
    ) -> Result<Shown<Filing>> {
        let checked = change::open(&self.db, ctx, &Filings, id)
            .await?
            .authorise(|f| rules::filing_visible(ctx, f))?
            .check_etag(etag)?;
        let from = checked.current().state;
        let to = rules::filing_transition(from, action)?;
        let mut next = checked.current().clone();
        if !apply(&mut next)? {
            let current = Versioned {
                version: checked.version(),
                value: next,
            };
            let timeline = store::timeline(checked.txn(), &id.name()).await?;
            return Ok(self.show_filing(ctx, current, timeline));
        }
        let now = instant(checked.txn().now_micros());
        next.state = to;
        next.update_time = now;
        if action == FilingAction::Submit {
            next.submit_time = Some(now);
        }
        // The timeline as it will be, read before the write: nothing is read back.
        let mut timeline = store::timeline(checked.txn(), &id.name()).await?;
        let saved = checked.save(next).await?;
        if action != FilingAction::Update {
            let e = entry(ctx, from.as_str(), to.as_str(), now, note);
            store::append_timeline(saved.txn(), &id.name(), &e).await?;
            timeline.push(e);
        }
        let template = match action {
            FilingAction::Register => Some(Template::FilingRegistered),
            FilingAction::Reject => Some(Template::FilingRejected),
            FilingAction::Close => Some(Template::FilingClosed),
            _ => None,
        };
        if let Some(t) = template {
            self.notify
                .filing(saved.txn(), ctx, &saved.saved().value, t)
                .await?;
        }
        let v = saved.commit().await?;
        Ok(self.show_filing(ctx, v, timeline))
    }

    pub async fn update_filing(
        &self,
        ctx: &CallContext,
        id: &FilingId,
        etag: &str,
        patch: FilingPatch,
    ) -> Result<Shown<Filing>> {
        self.change_filing(ctx, id, etag, FilingAction::Update, "", |f| {
            rules::apply_filing_patch(f, patch)?;
            Ok(true)
        })
        .await
    }

    pub async fn submit_filing(
        &self,
        ctx: &CallContext,
        id: &FilingId,
        etag: &str,
    ) -> Result<Shown<Filing>> {
        // Checked first, outside the write turn: the registry is a network call away.
        let v = self.visible_filing(ctx, id).await?;
        check_etag(etag, v.version, &id.name())?;
        let f = &v.value;
        rules::filing_transition(f.state, FilingAction::Submit)?;
        rules::require_consent(f.kind, &f.parties, &f.consents)?;
        let contact = self
            .eligible_contact(
                ctx,
                &f.institution,
                rules::permission_for(f.kind),
                f.activity_area,
                "",
                "file this",
            )
            .await?;
        // The filing must still be as it was when checked.
        self.change_filing(
            ctx,
            id,
            &v.version.to_string(),
            FilingAction::Submit,
            "",
            |f| {
                f.contact = contact;
                Ok(true)
            },
        )
        .await
    }

    pub async fn withdraw_filing(
        &self,
        ctx: &CallContext,
        id: &FilingId,
        etag: &str,
        reason: String,
    ) -> Result<Shown<Filing>> {
        self.change_filing(ctx, id, etag, FilingAction::Withdraw, &reason, |_| Ok(true))
            .await
    }

    pub async fn register_filing(
        &self,
        ctx: &CallContext,
        id: &FilingId,
        etag: &str,
        case_number: String,
    ) -> Result<Shown<Filing>> {
        let v = self.visible_filing(ctx, id).await?;
        if store::case_number_taken(self.db.conn(), &v.value.authority, &case_number).await? {
            return Err(ReferralError::CaseNumberTaken {
                case_number,
                authority: v.value.authority,
            });
        }
        let note = format!("case number {case_number}");
        self.change_filing(ctx, id, etag, FilingAction::Register, &note, |f| {
            f.case_number = Some(case_number);
            Ok(true)
        })
        .await
    }

    pub async fn reject_filing(
        &self,
        ctx: &CallContext,
        id: &FilingId,
        etag: &str,
        reason: String,
    ) -> Result<Shown<Filing>> {
        self.change_filing(ctx, id, etag, FilingAction::Reject, &reason.clone(), |f| {
            f.rejection_reason = reason;
            Ok(true)
        })
        .await
    }

    pub async fn close_filing(
        &self,
        ctx: &CallContext,
        id: &FilingId,
        etag: &str,
        outcome: String,
    ) -> Result<Shown<Filing>> {
        self.change_filing(ctx, id, etag, FilingAction::Close, "", |f| {
            f.outcome = outcome;
            Ok(true)
        })
        .await
    }

    /// Seals a minor or victim party of a filing, for the addressed authority: its name
    /// and national code are then masked for every reader but the filing institution and
    /// the authority. Sealing a sealed party changes nothing.
    pub async fn seal_filing_party(
        &self,
        ctx: &CallContext,
        id: &FilingId,
        etag: &str,
        index: usize,
    ) -> Result<Shown<Filing>> {
        let note = format!("parties[{index}] sealed");
        self.change_filing(ctx, id, etag, FilingAction::Seal, &note, |f| {
            if rules::party_to_seal(&f.parties, index, "filing")?.sealed {
                return Ok(false);
            }
            f.parties[index].sealed = true;
            Ok(true)
        })
        .await
    }

    pub async fn list_filings(
        &self,
        ctx: &CallContext,
        mut filter: FilingFilter,
        page: Page,
    ) -> Result<(Vec<Shown<Filing>>, String)> {
        let mut w = Where::new();
        match ctx.role() {
            Role::Institution => {
                // Another institution's filings are not its to list: none match.
                match rules::own_institution(ctx)
                    .filter(|own| filter.institution.as_ref().is_none_or(|i| i == own))
                {
                    Some(own) => filter.institution = Some(own),
                    None => return Ok((vec![], String::new())),
                }
            }
            Role::JudicialOfficer => {
                w.add("state <> ?", [FilingState::Draft.code().into()]);
                if let Some(a) = &ctx.principal.authority {
                    w.add("authority_key = ?", [fold_for_search(a).into()]);
                }
            }
            _ => {}
        }
        let f = &filter;
        if let Some(i) = &f.institution {
            w.add("institution_id = ?", [i.as_str().into()]);
        }
        if let Some(k) = f.kind {
            w.add("kind = ?", [k.code().into()]);
        }
        if let Some(s) = f.state {
            w.add("state = ?", [s.code().into()]);
        }
        if let Some(a) = f.area {
            w.add("area = ?", [a.code().into()]);
        }
        if !f.authority.is_empty() {
            w.add("authority_key = ?", [fold_for_search(&f.authority).into()]);
        }
        if let Some(t) = f.submitted_after {
            w.add("submit_us >= ?", [t.into()]);
        }
        if let Some(t) = f.submitted_before {
            w.add("submit_us < ?", [t.into()]);
        }
        let (after, before) = (f.submitted_after, f.submitted_before);
        let fp = pagination::fingerprint(&[
            "filings",
            &ctx.principal.subject,
            f.institution.as_ref().map_or("", |i| i.as_str()),
            &f.kind.map_or(0, FilingKind::code).to_string(),
            &f.state.map_or(0, FilingState::code).to_string(),
            &f.area.map_or(0, ActivityArea::code).to_string(),
            &fold_for_search(&f.authority),
            &format!("{after:?}{before:?}"),
        ]);
        if let Some(last) = pagination::decode::<String>(&page.token, &fp, "page_token")? {
            w.add("id > ?", [last.into()]);
        }
        let mut rows = store::list_filings(self.db.conn(), w, page.size + 1).await?;
        let next = pagination::next_page(&mut rows, page.size, &fp, |r| {
            r.value.id.as_str().to_owned()
        });
        // The page's timelines in one query.
        let names: Vec<String> = rows.iter().map(|r| r.value.id.name()).collect();
        let mut timelines = store::timelines(self.db.conn(), &names).await?;
        let shown: Vec<Shown<Filing>> = rows
            .into_iter()
            .map(|r| {
                let t = timelines.remove(&r.value.id.name()).unwrap_or_default();
                self.show_filing(ctx, r, t)
            })
            .collect();
        self.record_reads(
            ctx,
            shown
                .iter()
                .map(|s| (&s.value.institution, s.value.id.name())),
        )
        .await?;
        Ok((shown, next))
    }

    // ---------- referrals ----------

    async fn visible_referral(
        &self,
        ctx: &CallContext,
        id: &ReferralId,
    ) -> Result<Versioned<Referral>> {
        match store::get_referral(self.db.conn(), id).await? {
            Some(v) if rules::referral_visible(ctx, &v.value) => Ok(v),
            _ => Err(ApiError::not_found("referral", id.name()).into()),
        }
    }

    pub async fn get_referral(
        &self,
        ctx: &CallContext,
        id: &ReferralId,
    ) -> Result<Shown<Referral>> {
        let v = self.visible_referral(ctx, id).await?;
        let timeline = store::timeline(self.db.conn(), &id.name()).await?;
        let shown = self.show_referral(ctx, v, timeline);
        self.record_reads(ctx, std::iter::once((&shown.value.institution, id.name())))
            .await?;
        Ok(shown)
    }

    pub async fn create_referral<Req, Resp>(
        &self,
        ctx: &CallContext,
        request_id: &str,
        request: &Req,
        new: NewReferral,
        answer: impl FnOnce(&Shown<Referral>) -> Resp,
    ) -> Result<Resp>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        if !rules::may_act_for_source(ctx, new.source) {
            return Err(ReferralError::Forbidden(format!(
                "role {} does not refer for this source",
                ctx.role()
            )));
        }
        // A retry answers before the peer call, from a read: the create checks again
        // under the write turn.
        if let Some(r) = change::replayed(&self.db, ctx, request_id, request).await? {
            return Ok(r);
        }
        // Never offered without every party's agreement (art. 82), before the registry
        // is asked.
        rules::require_agreements(
            new.kind,
            &new.parties,
            &new.agreements,
            "referral.agreements",
        )?;
        let contact = self
            .eligible_contact(
                ctx,
                &new.institution,
                Permission::AcceptReferrals,
                new.activity_area,
                &new.province,
                "take referrals in this area",
            )
            .await?;
        let create = match change::begin_create_replayed(&self.db, ctx, request_id, request).await?
        {
            Begun::Replay(r) => return Ok(r),
            Begun::Fresh(c) => c,
        };
        let now = instant(create.txn().now_micros());
        let mut r = Referral {
            id: ReferralId::generate(),
            source: new.source,
            source_case_number: new.source_case_number,
            kind: new.kind,
            activity_area: new.activity_area,
            province: new.province,
            parties: new.parties,
            summary: new.summary,
            institution: new.institution,
            state: ReferralState::Offered,
            due_time: None,
            due: None,
            answer: None,
            extended: false,
            extension_reason: String::new(),
            progress: vec![],
            outcome: None,
            not_reconciled_reason: None,
            settlement_text: String::new(),
            state_reason: String::new(),
            create_time: now,
            update_time: now,
            accept_time: None,
            resolve_time: None,
            reference: store::next_reference(create.txn(), "referrals").await?,
            contact,
            judicial_district: new.judicial_district,
            agreements: new.agreements,
            chosen_by_parties: new.chosen_by_parties,
            extension_request: None,
            source_office: Some(notices::office(ctx).as_stored()),
            unknown: Unknown::default(),
        };
        r.answer = Some(self.answer_deadline(&r, now)?);
        store::insert_referral(create.txn(), &r).await?;
        self.offered(create.txn(), ctx, &r, true).await?;
        let note = if r.chosen_by_parties {
            format!("{} (chosen by the parties, art. 5)", r.institution.name())
        } else {
            r.institution.name()
        };
        let offered = entry(ctx, "", ReferralState::Offered.as_str(), now, &note);
        store::append_timeline(create.txn(), &r.id.name(), &offered).await?;
        let name = r.id.name();
        let shown = self.show_referral(
            ctx,
            Versioned {
                version: 1,
                value: r,
            },
            vec![offered],
        );
        let resp = answer(&shown);
        create.commit(name, &resp).await?;
        Ok(resp)
    }

    /// One change of a referral, through the change path. `apply` changes the value (at
    /// the time given), or answers false to leave it as it is.
    async fn change_referral(
        &self,
        ctx: &CallContext,
        id: &ReferralId,
        etag: &str,
        action: ReferralAction,
        note: &str,
        apply: impl FnOnce(&mut Referral, DateTime<Utc>) -> Result<bool>,
    ) -> Result<Shown<Referral>> {
        let checked = change::open(&self.db, ctx, &Referrals, id)
            .await?
            .authorise(|r| rules::referral_visible(ctx, r))?
            .check_etag(etag)?;
        rules::authorise_referral_action(ctx, checked.current(), action)?;
        let from = checked.current().state;
        let to = rules::referral_transition(from, action)?;
        let now = instant(checked.txn().now_micros());
        let mut next = checked.current().clone();
        if !apply(&mut next, now)? {
            let current = Versioned {
                version: checked.version(),
                value: next,
            };
            let timeline = store::timeline(checked.txn(), &id.name()).await?;
            return Ok(self.show_referral(ctx, current, timeline));
        }
        next.state = to;
        next.update_time = now;
        // The timeline as it will be, read before the write: nothing is read back.
        let mut timeline = store::timeline(checked.txn(), &id.name()).await?;
        let saved = checked.save(next).await?;
        let e = entry(ctx, from.as_str(), to.as_str(), now, note);
        store::append_timeline(saved.txn(), &id.name(), &e).await?;
        timeline.push(e);
        self.referral_effects(
            saved.txn(),
            ctx,
            action,
            saved.before(),
            &saved.saved().value,
        )
        .await?;
        let v = saved.commit().await?;
        Ok(self.show_referral(ctx, v, timeline))
    }

    /// The answer time of an offer made at `now`, on the legal calendar.
    fn answer_deadline(&self, r: &Referral, now: DateTime<Utc>) -> Result<Deadline> {
        let province = rules::province_of(r)?;
        let period = self.due.answer_period(r.kind);
        Ok(self.calendar.read(|c| c.deadline(now, period, &province))?)
    }

    /// An offer's notice and the reminders of its answer time (step 6); `created` when
    /// the referral is created in `txn`.
    async fn offered(
        &self,
        txn: &WriteTxn,
        ctx: &CallContext,
        r: &Referral,
        created: bool,
    ) -> Result<()> {
        if let Some(a) = &r.answer {
            if created {
                // The notice, the reminders and the late flag together: the fewest
                // statements for the commonest notifying change.
                self.notify
                    .offered_new(txn, ctx, r, a.last_day, a.ends_at)
                    .await?;
                return Ok(());
            }
            // The source is told if the answer time passes unanswered.
            self.notify.flag_late_answer(txn, ctx, r, a.ends_at).await?;
            self.notify
                .referral(txn, ctx, r, Template::ReferralOffered, &[a.last_day])
                .await?;
            self.notify
                .remind(
                    txn,
                    ctx,
                    r,
                    Topic::ReferralAnswer,
                    notices::answer_key(r),
                    a.ends_at,
                    false,
                )
                .await?;
        }
        Ok(())
    }

    /// The notices and reminders a change of a referral causes, in its transaction.
    async fn referral_effects(
        &self,
        txn: &WriteTxn,
        ctx: &CallContext,
        action: ReferralAction,
        before: &Referral,
        after: &Referral,
    ) -> Result<()> {
        let n = &self.notify;
        let now = instant(txn.now_micros());
        // An offer answered past its answer time, or taken back unanswered, counts against
        // the institution in suggestions (art. 29).
        if let Some(a) = before
            .answer
            .as_ref()
            .filter(|_| rules::is_answer_overdue(before, now))
        {
            let answered = match action {
                ReferralAction::Accept | ReferralAction::Decline => Some(Some(now)),
                ReferralAction::Reassign => Some(None),
                _ => None,
            };
            if let Some(answered) = answered {
                store::record_late_answer(
                    txn,
                    &before.id,
                    &before.institution,
                    a.ends_at.timestamp_micros(),
                    answered.map(|t| t.timestamp_micros()),
                )
                .await?;
            }
        }
        match action {
            ReferralAction::Accept | ReferralAction::Decline => {
                n.cancel(txn, &notices::answer_late_key(before)).await?;
            }
            _ => {}
        }
        match action {
            ReferralAction::Accept => {
                n.cancel(txn, &notices::answer_key(before)).await?;
                if let Some(d) = &after.due {
                    n.remind(
                        txn,
                        ctx,
                        after,
                        Topic::ReferralDue,
                        notices::due_key(after),
                        d.ends_at,
                        false,
                    )
                    .await?;
                }
            }
            ReferralAction::Decline => n.cancel(txn, &notices::answer_key(before)).await?,
            ReferralAction::Resolve | ReferralAction::Return => {
                n.cancel(txn, &notices::due_key(before)).await?;
            }
            ReferralAction::Withdraw => {
                n.referral(txn, ctx, after, Template::ReferralWithdrawn, &[])
                    .await?;
                n.cancel_all(txn, before).await?;
            }
            ReferralAction::Recall => {
                n.referral(txn, ctx, after, Template::ReferralRecalled, &[])
                    .await?;
                n.cancel_all(txn, before).await?;
            }
            ReferralAction::Extend => {
                n.cancel(txn, &notices::due_key(before)).await?;
                if let Some(d) = &after.due {
                    n.referral(txn, ctx, after, Template::ReferralExtended, &[d.last_day])
                        .await?;
                    n.remind(
                        txn,
                        ctx,
                        after,
                        Topic::ReferralDue,
                        notices::due_key(after),
                        d.ends_at,
                        false,
                    )
                    .await?;
                }
            }
            ReferralAction::Reassign => {
                n.cancel_all(txn, before).await?;
                self.offered(txn, ctx, after, false).await?;
            }
            ReferralAction::RequestExtension => {
                n.to_source(txn, ctx, after, Template::ReferralExtensionRequested)
                    .await?;
            }
            ReferralAction::RefuseExtension => {
                n.referral(txn, ctx, after, Template::ReferralExtensionRefused, &[])
                    .await?;
            }
            ReferralAction::Progress | ReferralAction::Seal => {}
        }
        Ok(())
    }

    /// The referral as it is, checked for `action` before a peer is asked.
    async fn precheck(
        &self,
        ctx: &CallContext,
        id: &ReferralId,
        etag: &str,
        action: ReferralAction,
    ) -> Result<Versioned<Referral>> {
        let v = self.visible_referral(ctx, id).await?;
        check_etag(etag, v.version, &id.name())?;
        rules::authorise_referral_action(ctx, &v.value, action)?;
        rules::referral_transition(v.value.state, action)?;
        Ok(v)
    }

    pub async fn accept_referral(
        &self,
        ctx: &CallContext,
        id: &ReferralId,
        etag: &str,
    ) -> Result<Shown<Referral>> {
        let v = self.precheck(ctx, id, etag, ReferralAction::Accept).await?;
        let r = &v.value;
        self.require_eligible(
            ctx,
            &r.institution,
            Permission::AcceptReferrals,
            r.activity_area,
            &r.province,
            "take referrals in this area",
        )
        .await?;
        let due = self.due.clone();
        let calendar = self.calendar.clone();
        self.change_referral(
            ctx,
            id,
            &v.version.to_string(),
            ReferralAction::Accept,
            "",
            move |r, now| {
                let province = rules::province_of(r)?;
                let d = calendar.read(|c| c.deadline(now, due.due_period(r.kind), &province))?;
                r.accept_time = Some(now);
                r.due_time = Some(d.ends_at);
                r.due = Some(d);
                r.answer = None;
                Ok(true)
            },
        )
        .await
    }

    /// Declines, returns or withdraws: the state changes, with the reason given.
    pub async fn with_reason(
        &self,
        ctx: &CallContext,
        id: &ReferralId,
        etag: &str,
        action: ReferralAction,
        reason: String,
    ) -> Result<Shown<Referral>> {
        self.change_referral(ctx, id, etag, action, &reason.clone(), |r, _| {
            r.state_reason = reason;
            Ok(true)
        })
        .await
    }

    pub async fn record_progress(
        &self,
        ctx: &CallContext,
        id: &ReferralId,
        etag: &str,
        session: NewProgress,
    ) -> Result<Shown<Referral>> {
        let subject = ctx.principal.subject.clone();
        self.change_referral(
            ctx,
            id,
            etag,
            ReferralAction::Progress,
            "session recorded",
            move |r, now| {
                r.progress.push(ProgressEntry {
                    session_time: session.session_time,
                    attendees: session.attendees,
                    notes: session.notes,
                    recorded_by: subject,
                    record_time: now,
                });
                Ok(true)
            },
        )
        .await
    }

    pub async fn resolve_referral(
        &self,
        ctx: &CallContext,
        id: &ReferralId,
        etag: &str,
        resolution: Resolution,
    ) -> Result<Shown<Referral>> {
        let note = resolution.outcome.as_str();
        self.change_referral(
            ctx,
            id,
            etag,
            ReferralAction::Resolve,
            note,
            move |r, now| {
                r.outcome = Some(resolution.outcome);
                r.not_reconciled_reason = resolution.not_reconciled_reason;
                r.settlement_text = resolution.settlement_text;
                r.resolve_time = Some(now);
                Ok(true)
            },
        )
        .await
    }

    pub async fn extend_referral(
        &self,
        ctx: &CallContext,
        id: &ReferralId,
        etag: &str,
        new_due: DateTime<Utc>,
        reason: String,
    ) -> Result<Shown<Referral>> {
        let policy = self.due.clone();
        let calendar = self.calendar.clone();
        let subject = ctx.principal.subject.clone();
        self.change_referral(
            ctx,
            id,
            etag,
            ReferralAction::Extend,
            &reason.clone(),
            move |r, now| {
                if r.extended {
                    return Err(ReferralError::AlreadyExtended);
                }
                let last = rules::current_last_day(r).ok_or_else(|| {
                    ReferralError::invalid("due_time", "the referral has no due time")
                })?;
                let days = rules::extension_days(last, new_due, policy.extension_days())?;
                let province = rules::province_of(r)?;
                // Counted from the current last day, which is not counted (art. 445).
                let d = calendar
                    .read(|c| c.deadline(last.end_instant(), Period::Days(days), &province))?;
                rules::extend(r, d)?;
                // The institution's request, if it made one, is answered by it.
                rules::grant_requested_extension(r, &reason, &subject, now);
                r.extension_reason = reason;
                Ok(true)
            },
        )
        .await
    }

    pub async fn reassign_referral(
        &self,
        ctx: &CallContext,
        id: &ReferralId,
        etag: &str,
        to: InstitutionId,
        agreements: Vec<PartyAgreement>,
    ) -> Result<Shown<Referral>> {
        let v = self
            .precheck(ctx, id, etag, ReferralAction::Reassign)
            .await?;
        let r = &v.value;
        if to == r.institution {
            return Err(ReferralError::invalid(
                "institution",
                "must be another institution than the current one",
            ));
        }
        rules::check_reassign(r, self.now())?;
        // Re-offered only with every party's agreement (art. 82), checked before the
        // registry is asked and again under the write turn.
        let mut agreed = r.clone();
        rules::add_agreements(&mut agreed, agreements.clone());
        rules::require_agreements(
            agreed.kind,
            &agreed.parties,
            &agreed.agreements,
            "agreements",
        )?;
        let contact = self
            .eligible_contact(
                ctx,
                &to,
                Permission::AcceptReferrals,
                r.activity_area,
                &r.province,
                "take referrals in this area",
            )
            .await?;
        let note = format!("{} → {to}", r.institution);
        let app = self.clone();
        self.change_referral(
            ctx,
            id,
            &v.version.to_string(),
            ReferralAction::Reassign,
            &note,
            move |r, now| {
                rules::check_reassign(r, now)?;
                rules::add_agreements(r, agreements);
                rules::require_agreements(r.kind, &r.parties, &r.agreements, "agreements")?;
                r.institution = to;
                r.contact = contact;
                r.extension_request = None;
                r.accept_time = None;
                r.due_time = None;
                r.due = None;
                r.answer = Some(app.answer_deadline(r, now)?);
                r.extended = false;
                r.extension_reason.clear();
                r.state_reason.clear();
                r.progress.clear();
                Ok(true)
            },
        )
        .await
    }

    /// The institution asks its source for the one extension, with a reason (mediation
    /// regulation art. 28); the source is told.
    pub async fn request_extension(
        &self,
        ctx: &CallContext,
        id: &ReferralId,
        etag: &str,
        reason: String,
    ) -> Result<Shown<Referral>> {
        let subject = ctx.principal.subject.clone();
        let note = format!("extension requested: {reason}");
        self.change_referral(
            ctx,
            id,
            etag,
            ReferralAction::RequestExtension,
            &note,
            move |r, now| {
                rules::request_extension(r, reason, &subject, now)?;
                Ok(true)
            },
        )
        .await
    }

    /// The source refuses the extension asked for, with a reason; the institution is told.
    pub async fn refuse_extension(
        &self,
        ctx: &CallContext,
        id: &ReferralId,
        etag: &str,
        reason: String,
    ) -> Result<Shown<Referral>> {
        let subject = ctx.principal.subject.clone();
        let note = format!("extension refused: {reason}");
        self.change_referral(
            ctx,
            id,
            etag,
            ReferralAction::RefuseExtension,
            &note,
            move |r, now| {
                rules::refuse_extension(r, &reason, &subject, now)?;
                Ok(true)
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
        id: &ReferralId,
        etag: &str,
        index: usize,
    ) -> Result<Shown<Referral>> {
        let note = format!("parties[{index}] sealed");
        self.change_referral(ctx, id, etag, ReferralAction::Seal, &note, |r, _| {
            if rules::party_to_seal(&r.parties, index, "referral")?.sealed {
                return Ok(false);
            }
            r.parties[index].sealed = true;
            Ok(true)
        })
        .await
    }

    /// Recalls every open referral of an institution that lost its licence, inside the
    /// event consumer's transaction (which moves the stream's cursor with them): the
    /// consumer holds the write turn, so the change path's steps are taken on its
    /// transaction.
    pub async fn recall_open_referrals(
        txn: &WriteTxn,
        institution: &InstitutionId,
        why: &str,
        ctx: &CallContext,
        notify: &Notify,
    ) -> Result<usize> {
        let now = instant(txn.now_micros());
        let mut n = 0;
        for v in store::open_referrals_of(txn, institution).await? {
            let from = v.value.state;
            let Ok(to) = rules::referral_transition(from, ReferralAction::Recall) else {
                continue;
            };
            // The one change path, inside the consumer's transaction: at the version just
            // listed, committed with the event's cursor.
            let checked = change::open_in(txn, ctx, &store::Referrals, &v.value.id)
                .await?
                .authorise(|_| true)?
                .check_etag(&v.version.to_string())?;
            let mut r = checked.current().clone();
            r.state = to;
            r.state_reason = why.to_owned();
            r.update_time = now;
            let saved = checked.save(r).await?;
            let e = TimelineEntry {
                from: from.as_str().to_owned(),
                to: to.as_str().to_owned(),
                actor: "system".into(),
                time: now,
                note: why.to_owned(),
            };
            store::append_timeline(saved.txn(), &v.value.id.name(), &e).await?;
            notify
                .referral(
                    saved.txn(),
                    ctx,
                    &saved.saved().value,
                    Template::ReferralRecalled,
                    &[],
                )
                .await?;
            notify.cancel_all(saved.txn(), saved.before()).await?;
            saved.commit().await?;
            n += 1;
        }
        Ok(n)
    }

    pub async fn list_referrals(
        &self,
        ctx: &CallContext,
        mut filter: ReferralFilter,
        page: Page,
    ) -> Result<(Vec<Shown<Referral>>, String)> {
        if ctx.role() == Role::Institution {
            match rules::own_institution(ctx)
                .filter(|own| filter.institution.as_ref().is_none_or(|i| i == own))
            {
                Some(own) => filter.institution = Some(own),
                None => return Ok((vec![], String::new())),
            }
        }
        let f = &filter;
        let mut w = Where::new();
        if let Some(i) = &f.institution {
            w.add("institution_id = ?", [i.as_str().into()]);
        }
        let (source, kind, state, area) = (
            f.source.map(ReferralSource::code),
            f.kind.map(ReferralKind::code),
            f.state.map(ReferralState::code),
            f.area.map(ActivityArea::code),
        );
        for (col, v) in [
            ("source", source),
            ("kind", kind),
            ("state", state),
            ("area", area),
        ] {
            if let Some(v) = v {
                w.add(&format!("{col} = ?"), [v.into()]);
            }
        }
        if !f.province.is_empty() {
            w.add("province_key = ?", [fold_for_search(&f.province).into()]);
        }
        if f.overdue_only {
            w.add(
                "state IN (?, ?) AND due_us < ?",
                [
                    ReferralState::Accepted.code().into(),
                    ReferralState::InProgress.code().into(),
                    self.db.now_micros().into(),
                ],
            );
        }
        if f.answer_overdue_only {
            w.add(
                "state = ? AND answer_us < ?",
                [
                    ReferralState::Offered.code().into(),
                    self.db.now_micros().into(),
                ],
            );
        }
        if let Some(days) = f.due_within_days {
            let now = self.now();
            let today =
                SolarDate::from_instant(now).map_err(|e| ReferralError::Deadline(e.to_string()))?;
            let until = today
                .add_days(i64::from(days))
                .end_instant()
                .timestamp_micros();
            let now_us = now.timestamp_micros();
            w.add(
                "((state = ? AND answer_us >= ? AND answer_us <= ?) OR \
                 (state IN (?, ?) AND due_us >= ? AND due_us <= ?))",
                [
                    ReferralState::Offered.code().into(),
                    now_us.into(),
                    until.into(),
                    ReferralState::Accepted.code().into(),
                    ReferralState::InProgress.code().into(),
                    now_us.into(),
                    until.into(),
                ],
            );
        }
        let fp = pagination::fingerprint(&[
            "referrals",
            f.institution.as_ref().map_or("", |i| i.as_str()),
            &format!(
                "{source:?}{kind:?}{state:?}{area:?}{}{:?}{}",
                f.overdue_only, f.due_within_days, f.answer_overdue_only
            ),
            &fold_for_search(&f.province),
        ]);
        if let Some(last) = pagination::decode::<String>(&page.token, &fp, "page_token")? {
            w.add("id > ?", [last.into()]);
        }
        let mut rows = store::list_referrals(self.db.conn(), w, page.size + 1).await?;
        let next = pagination::next_page(&mut rows, page.size, &fp, |r| {
            r.value.id.as_str().to_owned()
        });
        // The page's timelines in one query.
        let names: Vec<String> = rows.iter().map(|r| r.value.id.name()).collect();
        let mut timelines = store::timelines(self.db.conn(), &names).await?;
        let shown: Vec<Shown<Referral>> = rows
            .into_iter()
            .map(|r| {
                let t = timelines.remove(&r.value.id.name()).unwrap_or_default();
                self.show_referral(ctx, r, t)
            })
            .collect();
        self.record_reads(
            ctx,
            shown
                .iter()
                .map(|s| (&s.value.institution, s.value.id.name())),
        )
        .await?;
        Ok((shown, next))
    }

    /// Institutions to refer to in an area and province, best first: those the registry
    /// finds eligible now, ranked by their load (read in one aggregate query).
    pub async fn suggest(
        &self,
        ctx: &CallContext,
        area: ActivityArea,
        province: &str,
        district: &str,
        max: usize,
    ) -> Result<Vec<Suggestion>> {
        let district_key = fold_for_search(district);
        let candidates =
            crate::peers::licensed_institutions(&self.registry, ctx, province, area).await?;
        let eligible =
            crate::peers::eligible_candidates(&self.registry, ctx, candidates, area, province)
                .await?;
        let ids: Vec<InstitutionId> = eligible.iter().map(|c| c.institution.clone()).collect();
        let loads = store::loads(self.db.conn(), &ids, self.db.now_micros()).await?;
        let mut ranked: Vec<Suggestion> = eligible
            .into_iter()
            .map(|c| {
                let load = loads.get(&c.institution).copied().unwrap_or_default();
                Suggestion {
                    rank: 0,
                    open_referrals: load.open,
                    reconciliation_rate: if load.resolved == 0 {
                        0.0
                    } else {
                        load.reconciled as f64 / load.resolved as f64
                    },
                    resolved_referrals: load.resolved,
                    has_unextended_overdue: load.unextended_overdue > 0,
                    late_answers: load.late_answers,
                    in_district: !district_key.is_empty()
                        && fold_for_search(&c.judicial_district) == district_key,
                    judicial_district: c.judicial_district,
                    reason: String::new(),
                    institution: c.institution,
                    display_name: c.display_name,
                }
            })
            .collect();
        rules::rank(&mut ranked, max);
        Ok(ranked)
    }

    pub async fn statistics(&self, province: String, start: i64, end: i64) -> Result<Statistics> {
        let key = fold_for_search(&province);
        let filings: Vec<Filing> =
            store::in_period(self.db.conn(), "filings", &key, start, end).await?;
        let referrals: Vec<Referral> =
            store::in_period(self.db.conn(), "referrals", &key, start, end).await?;
        // Drafts are the institution's own work, not yet a filing with the judiciary.
        let filed: Vec<&Filing> = filings
            .iter()
            .filter(|f| f.state != FilingState::Draft)
            .collect();
        let now = self.now();
        let resolved: Vec<&Referral> = referrals
            .iter()
            .filter(|r| r.state == ReferralState::Resolved)
            .collect();
        let reconciled = resolved
            .iter()
            .filter(|r| r.outcome == Some(ReferralOutcome::Reconciled))
            .count();
        let mut days: Vec<f64> = resolved
            .iter()
            .filter_map(|r| {
                let a = r.accept_time?.timestamp_micros();
                let b = r.resolve_time?.timestamp_micros();
                Some((b - a) as f64 / 86_400_000_000.0)
            })
            .collect();
        days.sort_by(f64::total_cmp);
        let median = match days.len() {
            0 => 0.0,
            n if n % 2 == 1 => days[n / 2],
            n => (days[n / 2 - 1] + days[n / 2]) / 2.0,
        };
        let overdue = referrals
            .iter()
            .filter(|r| rules::is_overdue(r.state, r.due_time, now))
            .count();
        Ok(Statistics {
            province,
            filings_total: filed.len() as i64,
            filings_by_kind: count(filed.iter().map(|f| f.kind.as_str().to_owned())),
            filings_by_state: count(filed.iter().map(|f| f.state.as_str().to_owned())),
            filings_by_area: count(filed.iter().map(|f| f.activity_area.code())),
            filings_by_institution: count(filed.iter().map(|f| f.institution.name())),
            referrals_total: referrals.len() as i64,
            referrals_by_kind: count(referrals.iter().map(|r| r.kind.as_str().to_owned())),
            referrals_by_state: count(referrals.iter().map(|r| r.state.as_str().to_owned())),
            referrals_by_area: count(referrals.iter().map(|r| r.activity_area.code())),
            referrals_by_institution: count(referrals.iter().map(|r| r.institution.name())),
            reconciliation_rate: if resolved.is_empty() {
                0.0
            } else {
                reconciled as f64 / resolved.len() as f64
            },
            median_days_to_resolve: median,
            overdue_count: overdue as i64,
            resolved_count: resolved.len() as i64,
        })
    }

    /// Fires the reminders due at the service's clock (the reminder loop's round; a
    /// test's manual clock moves, this fires what is due then). Returns how many queued.
    pub async fn fire_reminders(&self) -> Result<usize> {
        Ok(mosharekat_notify::reminders::fire_due(&self.db, self.now())
            .await?
            .len())
    }

    /// The legal calendar this service counts deadlines on.
    pub fn calendar(&self) -> &SharedCalendar {
        &self.calendar
    }

    /// A holiday or closure published after deadlines were set (the handler the
    /// registry's calendar follower calls): the calendar takes it if it does not hold it
    /// yet, and every open deadline whose last day it now closes, in its province, moves
    /// to the next open day, each with a timeline entry saying why, a notice to the
    /// institution and its reminders moved; all in one transaction. Called again, nothing
    /// ends on those days any more, so nothing moves twice. Returns how many moved.
    /// A due time set before the calendar (no rule stored) stays as it was computed.
    pub async fn apply_publication(&self, publication: &Publication) -> Result<usize> {
        self.calendar.update(|c| -> Result<()> {
            let held = match publication {
                Publication::Holiday(h) => c.holidays_on(h.date).contains(h),
                Publication::Closure(cl) => c.closures().contains(cl),
            };
            if !held {
                match publication {
                    Publication::Holiday(h) => c.add_holiday(h.clone()),
                    Publication::Closure(cl) => c.add_closure(cl.clone())?,
                }
            }
            Ok(())
        })?;
        let (first, last) = match publication {
            Publication::Holiday(h) => (h.date, h.date),
            Publication::Closure(cl) => (cl.first_day, cl.last_day),
        };
        let why = publication.reason().to_persian();
        let ctx = CallContext::system("referral/calendar");
        let txn = self.db.begin_write().await?;
        let now = instant(txn.now_micros());
        let candidates = store::deadlines_ending_between(
            &txn,
            first.start_instant().timestamp_micros(),
            last.end_instant().timestamp_micros(),
        )
        .await?;
        let mut moved = 0;
        for v in candidates {
            let r = &v.value;
            let (running, topic) = if r.state == ReferralState::Offered {
                (r.answer.as_ref(), Topic::ReferralAnswer)
            } else {
                (r.due.as_ref(), Topic::ReferralDue)
            };
            let Some(before) = running else { continue };
            let Some(m) = self
                .calendar
                .read(|c| c.moved_by(publication, [((), before)]))?
                .pop()
            else {
                continue;
            };
            let checked = change::open_in(&txn, &ctx, &Referrals, &r.id)
                .await?
                .authorise(|_| true)?
                .check_etag(&v.version.to_string())?;
            let mut next = checked.current().clone();
            let key = match topic {
                Topic::ReferralAnswer => {
                    next.answer = Some(m.after.clone());
                    notices::answer_key(&next)
                }
                _ => {
                    next.due_time = Some(m.after.ends_at);
                    next.due = Some(m.after.clone());
                    notices::due_key(&next)
                }
            };
            next.update_time = now;
            let saved = checked.save(next).await?;
            let note = m
                .after
                .rule
                .late_moves
                .last()
                .map_or_else(|| why.clone(), |lm| lm.explain_persian());
            let e = TimelineEntry {
                from: r.state.as_str().to_owned(),
                to: r.state.as_str().to_owned(),
                actor: "system".into(),
                time: now,
                note,
            };
            store::append_timeline(saved.txn(), &r.id.name(), &e).await?;
            self.notify
                .referral(
                    saved.txn(),
                    &ctx,
                    &saved.saved().value,
                    Template::DeadlineMoved(topic),
                    &[m.after.last_day],
                )
                .await?;
            self.notify
                .move_reminders(saved.txn(), &key, m.after.ends_at)
                .await?;
            if topic == Topic::ReferralAnswer {
                // The flag to the source moves with the answer time.
                self.notify
                    .move_reminders(
                        saved.txn(),
                        &notices::answer_late_key(&saved.saved().value),
                        m.after.ends_at,
                    )
                    .await?;
            }
            saved.commit().await?;
            moved += 1;
        }
        mosharekat_platform::db::commit(txn).await?;
        if moved > 0 {
            tracing::info!(moved, reason = %why, "deadlines moved by a late publication");
        }
        Ok(moved)
    }
}
