//! The registry's use cases: one function per RPC, on domain types, each doing its work
//! in one transaction (the caller's role is checked once, by the API, from the role
//! tables here, before the request is even parsed): a change through the platform's change path (open → authorise → etag →
//! rules → save → history and licence events → audit → commit), a create through its
//! idempotent-create path, a read without the write turn.

use std::collections::HashMap;
use std::sync::Arc;

use mosharekat_platform::auth::Role;
use mosharekat_platform::change::{self, Begun, Versioned};
use mosharekat_platform::ctx::CallContext;
use mosharekat_platform::db::{Db, WriteTxn};
use mosharekat_platform::telemetry::current_traceparent;
use tokio::sync::watch;

use crate::error::{RegistryError, WhileDissolved};
use crate::names::{InstitutionId, InstitutionName, LicenceId, LicenceName};
use crate::rules::{
    self, EligibilityQuestion, EligibilityReason, Institution, InstitutionFields, InstitutionState,
    Licence, LicenceAction, LicenceState, LicenceTerms, NewInstitution,
};
use crate::store::{self, Actor, InstitutionFilter, Institutions, Licences};

mod calendar;
pub mod notices;

type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// Roles that may read the register (an `INSTITUTION` reads only its own record).
pub const READERS: &[Role] = &[
    Role::Admin,
    Role::RegistryOfficer,
    Role::JudicialOfficer,
    Role::CenterOfficer,
    Role::Secretary,
    Role::Member,
    Role::Auditor,
    Role::Service,
    Role::Institution,
];
/// Roles that register institutions and decide licences.
pub const REGISTRARS: &[Role] = &[Role::Admin, Role::RegistryOfficer];
/// Roles that may apply for a licence (an institution for itself only).
pub const APPLICANTS: &[Role] = &[Role::Admin, Role::RegistryOfficer, Role::Institution];
/// Roles that may ask about eligibility (an institution about itself only).
pub const ELIGIBILITY_ASKERS: &[Role] = &[
    Role::Admin,
    Role::RegistryOfficer,
    Role::JudicialOfficer,
    Role::CenterOfficer,
    Role::Secretary,
    Role::Auditor,
    Role::Service,
    Role::Institution,
];
/// Roles that may follow the licence event stream.
pub const EVENT_WATCHERS: &[Role] = &[Role::Admin, Role::Auditor, Role::Service];

/// The version of a resource just created (the store inserts it so), answered without
/// reading it back.
const FIRST_VERSION: i64 = 1;

/// The most eligibility questions one `BatchCheckEligibility` may ask.
pub const MAX_BATCH: usize = 100;

/// The registry's use cases and what they share.
#[derive(Clone, Debug)]
pub struct Registry {
    db: Db,
    /// The last event sequence committed, for live `WatchLicenceEvents` streams.
    events: Arc<watch::Sender<i64>>,
    /// Set at shutdown: live streams end, so that draining does not wait on them.
    stopping: Arc<watch::Sender<bool>>,
    /// The legal calendar the registry counts expiries by, its changes folded in.
    calendar: crate::calendar::LiveCalendar,
    /// The last calendar change committed, for live `WatchCalendarChanges` streams.
    calendar_changes: Arc<watch::Sender<i64>>,
}

/// Whether the caller may see representatives' national codes unmasked.
pub fn sees_personal_data(ctx: &CallContext, institution: &InstitutionId) -> bool {
    matches!(
        ctx.role(),
        Role::Admin | Role::RegistryOfficer | Role::Auditor
    ) || ctx.principal.owns_institution(institution.as_str())
}

/// An `INSTITUTION` caller sees only its own; anything else does not exist for it.
fn visible(ctx: &CallContext, institution: &InstitutionId) -> bool {
    ctx.role() != Role::Institution || ctx.principal.owns_institution(institution.as_str())
}

/// An eligibility answer: the reason, the licence it rests on, and the institution's
/// province.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub reason: EligibilityReason,
    pub licence: Option<LicenceName>,
    pub institution_province: String,
    pub display_name: String,
    /// The judicial district of the licence it rests on ('' if none or not given).
    pub licence_judicial_district: String,
}

/// A change of a licence's state asked by an officer.
#[derive(Debug, Clone)]
pub struct Transition {
    pub name: LicenceName,
    pub etag: String,
    pub action: LicenceAction,
    pub reason: String,
    /// The new end, for a renewal.
    pub valid_until_us: Option<i64>,
}

/// The filters of `ListLicences`, checked.
#[derive(Debug, Clone)]
pub struct LicenceFilter {
    /// `None` for every institution (`institutions/-`).
    pub institution: Option<InstitutionId>,
    pub state: Option<LicenceState>,
    /// In force and ending within this many days of today in Tehran (0: today).
    pub expires_within_days: Option<u32>,
    /// Ended (EXPIRED, or ACTIVE past its end).
    pub expired: bool,
}

impl Registry {
    pub fn new(db: Db, last_event: i64, calendar: crate::calendar::LiveCalendar) -> Self {
        let (tx, _) = watch::channel(last_event);
        let (stopping, _) = watch::channel(false);
        let (calendar_changes, _) = watch::channel(calendar.applied());
        Self {
            db,
            events: Arc::new(tx),
            stopping: Arc::new(stopping),
            calendar,
            calendar_changes: Arc::new(calendar_changes),
        }
    }

    /// The legal calendar as the registry holds it now.
    pub fn calendar(&self) -> &mosharekat_calendar::SharedCalendar {
        &self.calendar.shared
    }

    /// Ends every live event stream (subscribers resume elsewhere from their cursor).
    pub fn stop_streams(&self) {
        self.stopping.send_replace(true);
    }

    pub(crate) fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub(crate) fn event_notifier(&self) -> watch::Receiver<i64> {
        self.events.subscribe()
    }

    pub(crate) fn announce(&self, seq: i64) {
        self.events.send_if_modified(|cur| {
            if seq > *cur {
                *cur = seq;
                true
            } else {
                false
            }
        });
    }

    /// Registers `new`. The request and its answer are the API's messages, opaque here:
    /// the create path remembers the answer for a retry of the same request
    /// (`request_id`), which gets it again, as it was.
    pub async fn create_institution<Req, Resp>(
        &self,
        ctx: &CallContext,
        request_id: &str,
        req: &Req,
        new: NewInstitution,
        respond: impl FnOnce(&Versioned<Institution>) -> Resp,
    ) -> Result<Resp>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        let create = match change::begin_create(&self.db, ctx, request_id, req).await? {
            Begun::Replay(answer) => return Ok(answer),
            Begun::Fresh(c) => c,
        };
        if let Some(existing) =
            store::institution_by_national_id(create.txn(), &new.national_id).await?
        {
            return Err(RegistryError::DuplicateNationalId(existing));
        }
        let name = InstitutionName(InstitutionId::generate());
        let inst = Institution::register(name.clone(), new, create.txn().now_micros());
        store::insert_institution(create.txn(), &inst).await?;
        let answer = respond(&Versioned {
            version: FIRST_VERSION,
            value: inst,
        });
        create.commit(name.to_string(), &answer).await?;
        tracing::info!(institution = %name, "institution registered");
        Ok(answer)
    }

    pub async fn get_institution(
        &self,
        ctx: &CallContext,
        name: &InstitutionName,
    ) -> Result<Versioned<Institution>> {
        self.visible_institution(ctx, name).await
    }

    async fn visible_institution(
        &self,
        ctx: &CallContext,
        name: &InstitutionName,
    ) -> Result<Versioned<Institution>> {
        let not_found = || RegistryError::InstitutionNotFound(name.clone());
        if !visible(ctx, name.id()) {
            return Err(not_found());
        }
        store::get_institution(self.db.conn(), name.id())
            .await?
            .ok_or_else(not_found)
    }

    /// A page after `after`, at most `limit`; an institution sees only itself.
    pub async fn list_institutions(
        &self,
        ctx: &CallContext,
        mut filter: InstitutionFilter,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Versioned<Institution>>> {
        if ctx.role() == Role::Institution {
            filter.only_id = Some(InstitutionId::stored(
                ctx.principal.institution.clone().unwrap_or_default(),
            ));
        }
        Ok(
            store::list_institutions(self.db.conn(), &filter, after, limit, self.db.now_micros())
                .await?,
        )
    }

    /// Changes the fields `paths` names, as `apply` sets them on the current fields.
    pub async fn update_institution(
        &self,
        ctx: &CallContext,
        name: &InstitutionName,
        etag: &str,
        apply: impl FnOnce(&mut InstitutionFields) -> Result<(), mosharekat_platform::error::ApiError>,
    ) -> Result<Versioned<Institution>> {
        let checked = change::open(&self.db, ctx, &Institutions, name)
            .await?
            .authorise(|_| true)?
            .check_etag(etag)?;
        let current = checked.current();
        if current.dissolved() {
            return Err(RegistryError::Dissolved(WhileDissolved::Changing));
        }
        let mut next = current.clone();
        apply(&mut next.fields)?;
        let now = checked.txn().now_micros();
        next.update_us = now;
        // Checked in the write transaction that applies the change: a CreateLicence waits
        // for it, so no licence can appear between the check and the commit.
        if current.fields.activity_areas != next.fields.activity_areas {
            let facts = self.facts_of(checked.txn(), name.id(), now).await?;
            rules::statute_keeps_licensed_areas(
                &current.fields.activity_areas,
                &next.fields.activity_areas,
                &facts,
            )
            .map_err(|r| RegistryError::Refused(name.id().clone(), r))?;
        }
        Ok(checked.save(next).await?.commit().await?)
    }

    async fn facts_of(
        &self,
        txn: &WriteTxn,
        id: &InstitutionId,
        now: i64,
    ) -> Result<Vec<rules::LicenceFacts>> {
        Ok(store::licences_of(txn, std::slice::from_ref(id))
            .await?
            .iter()
            .map(|l| l.value.facts(now))
            .collect())
    }

    /// Dissolves an institution; its licences end with it (revoked, or an application
    /// rejected), each with its event and audit record, in the same transaction.
    pub async fn dissolve_institution(
        &self,
        ctx: &CallContext,
        name: &InstitutionName,
        etag: &str,
        reason: String,
    ) -> Result<Versioned<Institution>> {
        let checked = change::open(&self.db, ctx, &Institutions, name)
            .await?
            .authorise(|_| true)?
            .check_etag(etag)?;
        if checked.current().dissolved() {
            return Err(RegistryError::Dissolved(WhileDissolved::Dissolving));
        }
        let now = checked.txn().now_micros();
        let mut next = checked.current().clone();
        next.state = InstitutionState::Dissolved { reason, at_us: now };
        next.update_us = now;
        let saved = checked.save(next).await?;
        let mut last_seq = 0;
        for Versioned { version, value } in
            store::licences_of(saved.txn(), std::slice::from_ref(name.id())).await?
        {
            let mut changes = Vec::new();
            let mut lic = value;
            if rules::due_for_expiry(lic.state, lic.terms.valid_until_us, now) {
                let (l, e) = lic.after(
                    LicenceAction::Expire,
                    LicenceState::Expired,
                    None,
                    Actor::REGISTRY.subject,
                    "valid_until has passed",
                    now,
                );
                lic = l;
                changes.push((e, Actor::REGISTRY.role));
            }
            if let Some(action) = rules::on_dissolution(lic.state) {
                let to = rules::transition(lic.state, action)
                    .map_err(|r| RegistryError::Refused(name.id().clone(), r))?;
                let (l, e) = lic.after(
                    action,
                    to,
                    None,
                    &ctx.principal.subject,
                    "institution dissolved",
                    now,
                );
                lic = l;
                changes.push((e, ctx.principal.role));
            }
            if changes.is_empty() {
                continue;
            }
            last_seq = last_seq.max(
                self.save_licence_effect(saved.txn(), ctx, version, &lic, changes)
                    .await?,
            );
            if lic.state == LicenceState::Revoked {
                notices::notify(
                    saved.txn(),
                    &saved.saved().value,
                    &lic.name,
                    mosharekat_notify::Template::LicenceRevoked,
                    Vec::new(),
                    "",
                )
                .await?;
            }
        }
        let v = saved.commit().await?;
        self.announce(last_seq);
        Ok(v)
    }

    /// Saves `lic`, read at `version` in `txn` (a licence changed as an effect of another
    /// change, with the repository the change path uses), appends its events and their
    /// audit records; returns the last event's sequence.
    async fn save_licence_effect(
        &self,
        txn: &WriteTxn,
        ctx: &CallContext,
        version: i64,
        lic: &Licence,
        changes: Vec<(rules::HistoryEntry, Role)>,
    ) -> Result<i64> {
        use mosharekat_platform::change::Repository;
        if !Licences.save(txn, &lic.name, version, lic).await? {
            return Err(mosharekat_platform::error::ApiError::stale(&lic.name.to_string()).into());
        }
        // Every effect of a dissolution ends the licence (revoked, rejected, expired).
        mosharekat_notify::reminders::cancel(txn, &notices::expiry_key(&lic.name)).await?;
        let mut seq = 0;
        for (entry, role) in &changes {
            seq = store::append_event(txn, &lic.name, entry, *role, &current_traceparent()).await?;
            mosharekat_platform::audit::append(txn, &ctx.audit(lic.name.to_string())).await?;
        }
        Ok(seq)
    }

    /// Applies for a licence under `parent`; the answer as [`Registry::create_institution`]'s.
    pub async fn create_licence<Req, Resp>(
        &self,
        ctx: &CallContext,
        request_id: &str,
        req: &Req,
        parent: &InstitutionName,
        terms: LicenceTerms,
        respond: impl FnOnce(&Versioned<Licence>) -> Resp,
    ) -> Result<Resp>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        if !visible(ctx, parent.id()) {
            return Err(RegistryError::InstitutionNotFound(parent.clone()));
        }
        let create = match change::begin_create(&self.db, ctx, request_id, req).await? {
            Begun::Replay(answer) => return Ok(answer),
            Begun::Fresh(c) => c,
        };
        let inst = store::get_institution(create.txn(), parent.id())
            .await?
            .ok_or_else(|| RegistryError::InstitutionNotFound(parent.clone()))?
            .value;
        if inst.dissolved() {
            return Err(RegistryError::Dissolved(WhileDissolved::Licensing));
        }
        rules::within_statute(&terms.activity_areas, &inst.fields.activity_areas)
            .map_err(|r| RegistryError::Refused(parent.id().clone(), r))?;
        let name = LicenceName {
            institution: parent.id().clone(),
            id: LicenceId::generate(),
        };
        let now = create.txn().now_micros();
        let lic = Licence::apply(name.clone(), terms, &ctx.principal.subject, now);
        store::insert_licence(create.txn(), &lic).await?;
        let seq = store::append_event(
            create.txn(),
            &name,
            &lic.history[0],
            ctx.principal.role,
            &current_traceparent(),
        )
        .await?;
        let answer = respond(&Versioned {
            version: FIRST_VERSION,
            value: lic.as_of(now),
        });
        create.commit(name.to_string(), &answer).await?;
        self.announce(seq);
        Ok(answer)
    }

    pub async fn get_licence(
        &self,
        ctx: &CallContext,
        name: &LicenceName,
    ) -> Result<Versioned<Licence>> {
        let not_found = || RegistryError::LicenceNotFound(name.clone());
        if !visible(ctx, &name.institution) {
            return Err(not_found());
        }
        let now = self.db.now_micros();
        Ok(store::get_licence(self.db.conn(), name)
            .await?
            .ok_or_else(not_found)?
            .map(|l| l.as_of(now)))
    }

    /// A page of licences with their histories; an institution lists only its own,
    /// whatever parent it names.
    pub async fn list_licences(
        &self,
        ctx: &CallContext,
        mut filter: LicenceFilter,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Versioned<Licence>>> {
        if ctx.role() == Role::Institution {
            if let Some(i) = &filter.institution
                && !visible(ctx, i)
            {
                return Err(RegistryError::InstitutionNotFound(InstitutionName(
                    i.clone(),
                )));
            }
            filter.institution = ctx.principal.institution.clone().map(InstitutionId::stored);
        }
        let now = self.db.now_micros();
        let ends = if filter.expired {
            Some(store::EndFilter::Expired)
        } else {
            match filter.expires_within_days {
                Some(days) => {
                    let today = mosharekat_calendar::SolarDate::from_instant(self.db.clock().now())
                        .map_err(|e| {
                            mosharekat_platform::error::ApiError::internal(anyhow::anyhow!("{e}"))
                        })?;
                    Some(store::EndFilter::EndsBy(
                        today
                            .add_days(i64::from(days))
                            .end_instant()
                            .timestamp_micros(),
                    ))
                }
                None => None,
            }
        };
        Ok(store::list_licences(
            self.db.conn(),
            filter.institution.as_ref(),
            filter.state,
            ends,
            after,
            limit,
            now,
        )
        .await?
        .into_iter()
        .map(|v| v.map(|l| l.as_of(now)))
        .collect())
    }

    /// One licence transition, from request to commit. An ACTIVE licence past its end is
    /// first recorded as EXPIRED (its own event), in the same change.
    pub async fn transition(&self, ctx: &CallContext, t: Transition) -> Result<Versioned<Licence>> {
        let checked = change::open(&self.db, ctx, &Licences, &t.name)
            .await?
            .authorise(|_| true)?
            .check_etag(&t.etag)?;
        let now = checked.txn().now_micros();
        let mut lic = checked.current().clone();
        let mut changes = Vec::new();
        if rules::due_for_expiry(lic.state, lic.terms.valid_until_us, now) {
            let (l, e) = lic.after(
                LicenceAction::Expire,
                LicenceState::Expired,
                None,
                Actor::REGISTRY.subject,
                "valid_until has passed",
                now,
            );
            lic = l;
            changes.push((e, Actor::REGISTRY.role));
        }
        let inst_id = t.name.institution.clone();
        let to = rules::transition(lic.state, t.action)
            .map_err(|r| RegistryError::Refused(inst_id.clone(), r))?;
        if t.action.puts_in_force() {
            let inst = store::get_institution(checked.txn(), &inst_id)
                .await?
                .ok_or_else(|| RegistryError::InstitutionNotFound(t.name.parent()))?;
            if inst.value.dissolved() {
                return Err(RegistryError::Dissolved(WhileDissolved::PuttingInForce));
            }
            let facts = self.facts_of(checked.txn(), &inst_id, now).await?;
            rules::one_in_force(&t.name.id, &lic.facts(now).province_key, &facts)
                .map_err(|r| RegistryError::Refused(inst_id.clone(), r))?;
        }
        if let Some(vu) = t.valid_until_us
            && !rules::renewal_extends(vu, lic.terms.valid_until_us, now)
        {
            return Err(mosharekat_platform::error::ApiError::invalid(
                "valid_until",
                "must be later than now and than the current valid_until",
            )
            .into());
        }
        let (mut next, entry) = lic.after(
            t.action,
            to,
            t.valid_until_us,
            &ctx.principal.subject,
            &t.reason,
            now,
        );
        if matches!(t.action, LicenceAction::Approve | LicenceAction::Renew) {
            // The end is counted by the legal calendar from the act that sets it.
            let cal = self.calendar_in(checked.txn()).await?;
            next.expiry =
                notices::licence_expiry(&cal, now, next.terms.valid_until_us, &next.terms.province);
            if let Some(d) = &next.expiry {
                next.terms.valid_until_us = d.ends_at.timestamp_micros();
            }
        }
        changes.push((entry, ctx.principal.role));
        let expired_first = changes.len() > 1;
        let saved = checked.save(next).await?;
        if t.action == LicenceAction::Approve {
            // The public record's verification code, given with the grant.
            crate::public::store::assign_in(saved.txn(), &t.name).await?;
        }
        let mut seq = 0;
        for (entry, role) in &changes {
            seq = store::append_event(saved.txn(), &t.name, entry, *role, &current_traceparent())
                .await?;
        }
        self.notify_transition(
            saved.txn(),
            &t,
            saved.saved().value.expiry.as_ref(),
            saved.saved().value.terms.valid_until_us,
        )
        .await?;
        if expired_first {
            // The expiry is a change of its own, audited as before.
            mosharekat_platform::audit::append(saved.txn(), &ctx.audit(t.name.to_string())).await?;
        }
        let v = saved.commit().await?;
        self.announce(seq);
        tracing::info!(licence = %t.name, action = t.action.verb(), "licence changed");
        Ok(v.map(|l| l.as_of(now)))
    }

    /// The notices and reminders of a licence transition, in its transaction.
    async fn notify_transition(
        &self,
        txn: &WriteTxn,
        t: &Transition,
        expiry: Option<&mosharekat_calendar::Deadline>,
        valid_until_us: i64,
    ) -> Result<()> {
        use mosharekat_notify::{NoticeDate, Template};
        let Some(inst) = store::get_institution(txn, &t.name.institution).await? else {
            return Ok(());
        };
        let inst = &inst.value;
        let more = expiry.map(|d| d.explain_persian()).unwrap_or_default();
        let template = match t.action {
            LicenceAction::Approve => Some(Template::LicenceApproved),
            LicenceAction::Suspend => Some(Template::LicenceSuspended),
            LicenceAction::Reinstate => Some(Template::LicenceReinstated),
            LicenceAction::Revoke => Some(Template::LicenceRevoked),
            _ => None,
        };
        if let Some(template) = template {
            notices::notify(
                txn,
                inst,
                &t.name,
                template,
                Vec::<NoticeDate>::new(),
                &more,
            )
            .await?;
        }
        match t.action {
            LicenceAction::Approve | LicenceAction::Renew => {
                if let Some(end) = chrono::DateTime::from_timestamp_micros(valid_until_us)
                    .filter(|e| mosharekat_calendar::SolarDate::from_instant(*e).is_ok())
                {
                    notices::schedule_expiry(txn, inst, &t.name, end).await?;
                }
            }
            LicenceAction::Revoke | LicenceAction::Reject => {
                mosharekat_notify::reminders::cancel(txn, &notices::expiry_key(&t.name)).await?;
            }
            _ => {}
        }
        Ok(())
    }

    pub async fn check_eligibility(
        &self,
        ctx: &CallContext,
        q: &EligibilityQuestion,
    ) -> Result<Answer> {
        self.batch_check_eligibility(ctx, std::slice::from_ref(q))
            .await?
            .pop()
            .ok_or_else(|| RegistryError::InstitutionNotFound(q.institution.clone()))
    }

    /// Answers every question in order, with one read of the institutions and one of
    /// their licences for the whole batch. An institution the caller may not see, or
    /// that does not exist, is `NOT_FOUND` for the whole batch (as one question would be).
    pub async fn batch_check_eligibility(
        &self,
        ctx: &CallContext,
        questions: &[EligibilityQuestion],
    ) -> Result<Vec<Answer>> {
        let mut ids: Vec<InstitutionId> = questions
            .iter()
            .map(|q| q.institution.id().clone())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        if let Some(hidden) = ids.iter().find(|i| !visible(ctx, i)) {
            return Err(RegistryError::InstitutionNotFound(InstitutionName(
                hidden.clone(),
            )));
        }
        let c = self.db.conn();
        let institutions = store::institutions_by_id(c, &ids).await?;
        let now = self.db.now_micros();
        let mut facts: HashMap<InstitutionId, Vec<rules::LicenceFacts>> = HashMap::new();
        let mut districts: HashMap<LicenceId, String> = HashMap::new();
        for l in store::licences_of(c, &ids).await? {
            let f = l.value.facts(now);
            districts.insert(l.value.name.id.clone(), l.value.terms.judicial_district);
            facts.entry(l.value.name.institution).or_default().push(f);
        }
        questions
            .iter()
            .map(|q| {
                let inst = institutions
                    .get(q.institution.id())
                    .ok_or_else(|| RegistryError::InstitutionNotFound(q.institution.clone()))?;
                let (reason, licence) = rules::decide_eligibility(
                    inst.dissolved(),
                    facts.get(q.institution.id()).map_or(&[][..], Vec::as_slice),
                    q.action,
                    q.area,
                    q.province_key.as_deref(),
                    now,
                );
                let district = licence
                    .as_ref()
                    .and_then(|id| districts.get(id))
                    .cloned()
                    .unwrap_or_default();
                Ok(Answer {
                    licence_judicial_district: district,
                    ..answer(inst, reason, licence)
                })
            })
            .collect()
    }

    pub async fn check_licensed(
        &self,
        ctx: &CallContext,
        name: &InstitutionName,
        province_key: Option<&str>,
    ) -> Result<Answer> {
        let inst = self.visible_institution(ctx, name).await?.value;
        let now = self.db.now_micros();
        let facts: Vec<_> = store::licences_of(self.db.conn(), std::slice::from_ref(name.id()))
            .await?
            .iter()
            .map(|l| l.value.facts(now))
            .collect();
        let (reason, licence) = rules::decide_licensed(inst.dissolved(), &facts, province_key, now);
        Ok(answer(&inst, reason, licence))
    }

    /// Records `name` as EXPIRED if it is still ACTIVE past its end (a change through the
    /// change path, by the registry). Returns the event's sequence, if it wrote one.
    pub async fn expire(&self, ctx: &CallContext, name: &LicenceName) -> Result<Option<i64>> {
        let checked = change::open(&self.db, ctx, &Licences, name)
            .await?
            .authorise(|_| true)?
            .check_etag("")?;
        let now = checked.txn().now_micros();
        let lic = checked.current();
        if !rules::due_for_expiry(lic.state, lic.terms.valid_until_us, now) {
            return Ok(None);
        }
        let (next, entry) = lic.after(
            LicenceAction::Expire,
            LicenceState::Expired,
            None,
            Actor::REGISTRY.subject,
            "valid_until has passed",
            now,
        );
        let saved = checked.save(next).await?;
        let seq = store::append_event(
            saved.txn(),
            name,
            &entry,
            Actor::REGISTRY.role,
            &current_traceparent(),
        )
        .await?;
        mosharekat_notify::reminders::cancel(saved.txn(), &notices::expiry_key(name)).await?;
        saved.commit().await?;
        self.announce(seq);
        Ok(Some(seq))
    }
}

fn answer(inst: &Institution, reason: EligibilityReason, licence: Option<LicenceId>) -> Answer {
    Answer {
        reason,
        licence: licence.map(|id| LicenceName {
            institution: inst.name.id().clone(),
            id,
        }),
        institution_province: inst.fields.province.clone(),
        display_name: inst.fields.display_name.clone(),
        licence_judicial_district: String::new(),
    }
}
