//! `mosharekat.registry.v1.RegistryService`: the handlers. Each parses its request at the
//! edge, checks the caller's role, and does its work in one transaction with its audit
//! record (and, for licences, its event).

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use mosharekat_api::common::v1::ActivityArea;
use mosharekat_api::registry::v1 as pb;
use mosharekat_api::registry::v1::registry_service_server::RegistryService;
use mosharekat_platform::auth::Role;
use mosharekat_platform::ctx::CallContext;
use mosharekat_platform::db::WriteTxn;
use mosharekat_platform::db::{Db, check_etag, commit, from_timestamp, now_micros};
use mosharekat_platform::error::{ApiError, Violations};
use mosharekat_platform::{audit, idempotency, pagination};
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use crate::domain::{self, LicenceAction, eligibility_text, state_name};
use crate::input::{self, InstitutionFields, LicenceFields};
use crate::store::{self, InstitutionRow, LicenceRow, NewEvent};

/// Roles that may read the register (an `INSTITUTION` reads only its own record).
const READERS: &[Role] = &[
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
const REGISTRARS: &[Role] = &[Role::Admin, Role::RegistryOfficer];
const ELIGIBILITY_ASKERS: &[Role] = &[
    Role::Admin,
    Role::RegistryOfficer,
    Role::JudicialOfficer,
    Role::CenterOfficer,
    Role::Secretary,
    Role::Auditor,
    Role::Service,
    Role::Institution,
];
const EVENT_WATCHERS: &[Role] = &[Role::Admin, Role::Auditor, Role::Service];

/// The registry's handlers and what they share.
#[derive(Clone, Debug)]
pub struct Registry {
    db: Db,
    /// The last event sequence committed, for live `WatchLicenceEvents` streams.
    events: Arc<watch::Sender<i64>>,
    /// Set at shutdown: live streams end, so that draining does not wait on them.
    stopping: Arc<watch::Sender<bool>>,
}

fn not_found_institution(id: &str) -> ApiError {
    ApiError::not_found("institution", input::institution_name(id))
}

fn not_found_licence(inst: &str, id: &str) -> ApiError {
    ApiError::not_found("licence", input::licence_name(inst, id))
}

/// Whether the caller may see representatives' national codes unmasked.
fn sees_personal_data(ctx: &CallContext, institution_id: &str) -> bool {
    matches!(
        ctx.role(),
        Role::Admin | Role::RegistryOfficer | Role::Auditor
    ) || ctx.principal.owns_institution(institution_id)
}

/// An `INSTITUTION` caller sees only its own; anything else does not exist for it.
fn visible(ctx: &CallContext, institution_id: &str) -> bool {
    ctx.role() != Role::Institution || ctx.principal.owns_institution(institution_id)
}

fn enum_filter<T: TryFrom<i32>>(raw: i32, field: &str) -> Result<Option<T>, ApiError> {
    if raw == 0 {
        return Ok(None);
    }
    T::try_from(raw)
        .map(Some)
        .map_err(|_| ApiError::invalid(field, "is not a known value"))
}

impl Registry {
    pub fn new(db: Db, last_event: i64) -> Self {
        let (tx, _) = watch::channel(last_event);
        let (stopping, _) = watch::channel(false);
        Self {
            db,
            events: Arc::new(tx),
            stopping: Arc::new(stopping),
        }
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

    async fn institution_for(
        &self,
        ctx: &CallContext,
        id: &str,
    ) -> Result<InstitutionRow, ApiError> {
        if !visible(ctx, id) {
            return Err(not_found_institution(id));
        }
        store::get_institution(self.db.conn(), id)
            .await?
            .ok_or_else(|| not_found_institution(id))
    }

    async fn licence_pb(&self, row: &LicenceRow, now: i64) -> Result<pb::Licence, ApiError> {
        let history = store::history(self.db.conn(), &row.id).await?;
        Ok(row.to_pb(history, now))
    }

    /// Records an ACTIVE licence whose end has passed as EXPIRED (once), inside `txn`.
    /// Returns the row as it now stands and the sequence of the event, if one was written.
    pub(crate) async fn materialise_expiry(
        txn: &WriteTxn,
        ctx: &CallContext,
        row: LicenceRow,
        now: i64,
    ) -> Result<(LicenceRow, Option<i64>), ApiError> {
        if row.stored_state() != pb::LicenceState::Active
            || row.state_at(now) != pb::LicenceState::Expired
        {
            return Ok((row, None));
        }
        let name = input::licence_name(&row.institution_id, &row.id);
        if !store::set_licence_state(
            txn,
            &row.id,
            row.version,
            pb::LicenceState::Expired,
            None,
            now,
        )
        .await?
        {
            return Err(ApiError::stale(&name));
        }
        let seq = store::append_event(
            txn,
            &NewEvent {
                licence_id: &row.id,
                institution_id: &row.institution_id,
                kind: pb::LicenceEventKind::Expired,
                from: pb::LicenceState::Active,
                to: pb::LicenceState::Expired,
                actor: store::Actor::REGISTRY,
                reason: "valid_until has passed",
                traceparent: &mosharekat_platform::telemetry::current_traceparent(),
            },
            now,
        )
        .await?;
        audit::append(txn, &ctx.audit(name)).await?;
        let row = LicenceRow {
            state: pb::LicenceState::Expired as i32,
            version: row.version + 1,
            ..row
        };
        Ok((row, Some(seq)))
    }

    /// Refuses when the institution already holds another ACTIVE or SUSPENDED licence in
    /// the licence's province.
    async fn check_one_in_force(
        txn: &WriteTxn,
        row: &LicenceRow,
        now: i64,
    ) -> Result<(), ApiError> {
        let others = store::licences_of(txn, &row.institution_id).await?;
        let clash = others.iter().find(|o| {
            o.id != row.id
                && o.province_key == row.province_key
                && matches!(
                    o.state_at(now),
                    pb::LicenceState::Active | pb::LicenceState::Suspended
                )
        });
        match clash {
            Some(o) => Err(ApiError::precondition(
                "LICENCE_ALREADY_IN_FORCE",
                format!(
                    "the institution already holds licence {} in this province",
                    input::licence_name(&o.institution_id, &o.id)
                ),
                "این نهاد در این استان مجوز معتبر یا تعلیق‌شدهٔ دیگری دارد.",
            )),
            None => Ok(()),
        }
    }

    /// Refuses a statute change (`old` to `new` areas) that would drop areas a PENDING,
    /// ACTIVE or SUSPENDED licence covers: a licence's areas stay within the statute, as
    /// `CreateLicence` requires. The areas and the licences are named.
    async fn check_statute_keeps_licensed_areas(
        txn: &WriteTxn,
        inst_id: &str,
        old: &[i32],
        new: &[i32],
        now: i64,
    ) -> Result<(), ApiError> {
        if old.iter().all(|a| new.contains(a)) {
            return Ok(());
        }
        let facts: Vec<_> = store::licences_of(txn, inst_id)
            .await?
            .iter()
            .map(|l| l.facts(now))
            .collect();
        let in_use = domain::dropped_areas_in_use(old, new, &facts);
        if in_use.is_empty() {
            return Ok(());
        }
        let areas: Vec<&str> = in_use.iter().map(|(a, _)| a.as_str_name()).collect();
        let mut licences: Vec<String> = in_use
            .iter()
            .flat_map(|(_, ids)| ids.iter().map(|l| input::licence_name(inst_id, l)))
            .collect();
        licences.sort_unstable();
        licences.dedup();
        let mut e = ApiError::precondition(
            "AREAS_COVERED_BY_LICENCE",
            format!(
                "institution.activity_areas cannot drop {}: covered by {} (pending, active or \
                 suspended); revoke or reject the licence first, or keep the areas",
                areas.join(", "),
                licences.join(", ")
            ),
            format!(
                "حوزه‌های {} را نمی‌توان از اساسنامهٔ نهاد حذف کرد، زیرا مجوزِ در انتظار، معتبر یا \
                 تعلیق‌شدهٔ نهاد آن‌ها را در بر می‌گیرد.",
                areas.join("، ")
            ),
        );
        if let ApiError::FailedPrecondition { metadata, .. } = &mut e {
            metadata.insert("areas".into(), areas.join(","));
            metadata.insert("licences".into(), licences.join(","));
        }
        Err(e)
    }

    /// One licence transition, from request to commit.
    async fn transition(
        &self,
        ctx: CallContext,
        name: &str,
        etag: &str,
        reason: &str,
        action: LicenceAction,
        valid_until: Option<&prost_types::Timestamp>,
    ) -> Result<pb::Licence, ApiError> {
        ctx.require(REGISTRARS)?;
        let (inst_id, lic_id) = input::parse_licence_name(name, "name")?;
        let reason = input::reason(reason, action.needs_reason(), "reason")?;
        let new_until = match (action, valid_until) {
            (LicenceAction::Renew, None) => {
                return Err(ApiError::invalid("valid_until", "is required"));
            }
            (LicenceAction::Renew, Some(t)) => Some(from_timestamp(t).ok_or_else(|| {
                ApiError::invalid("valid_until", "must be a time between 1900 and 2200")
            })?),
            _ => None,
        };
        let now = now_micros();
        let txn = self.db.begin_write().await?;
        let row = store::get_licence(&txn, &inst_id, &lic_id)
            .await?
            .ok_or_else(|| not_found_licence(&inst_id, &lic_id))?;
        check_etag(etag, row.version, name)?;
        let (row, expiry_seq) = Self::materialise_expiry(&txn, &ctx, row, now).await?;
        let from = row.stored_state();
        let to = domain::next_state(from, action).ok_or_else(|| {
            ApiError::precondition(
                "LICENCE_STATE_CONFLICT",
                format!(
                    "cannot {} a licence that is {}",
                    action.verb(),
                    state_name(from)
                ),
                format!(
                    "این اقدام برای مجوزی در وضعیت {} ممکن نیست.",
                    state_name(from)
                ),
            )
        })?;
        if matches!(
            action,
            LicenceAction::Approve | LicenceAction::Reinstate | LicenceAction::Renew
        ) {
            let inst = store::get_institution(&txn, &inst_id)
                .await?
                .ok_or_else(|| not_found_institution(&inst_id))?;
            if inst.dissolved() {
                let (r, fa) = eligibility_text(pb::EligibilityReason::InstitutionDissolved);
                return Err(ApiError::precondition(
                    r,
                    "the institution is dissolved",
                    fa,
                ));
            }
            Self::check_one_in_force(&txn, &row, now).await?;
        }
        if let Some(vu) = new_until
            && vu <= now.max(row.valid_until_us)
        {
            return Err(ApiError::invalid(
                "valid_until",
                "must be later than now and than the current valid_until",
            ));
        }
        if !store::set_licence_state(&txn, &row.id, row.version, to, new_until, now).await? {
            return Err(ApiError::stale(name));
        }
        let seq = store::append_event(
            &txn,
            &NewEvent {
                licence_id: &row.id,
                institution_id: &row.institution_id,
                kind: action.event_kind(),
                from,
                to,
                actor: store::Actor::of(&ctx),
                reason: &reason,
                traceparent: &mosharekat_platform::telemetry::current_traceparent(),
            },
            now,
        )
        .await?;
        audit::append(&txn, &ctx.audit(name)).await?;
        let updated = store::get_licence(&txn, &inst_id, &lic_id)
            .await?
            .ok_or_else(|| not_found_licence(&inst_id, &lic_id))?;
        let history = store::history(&txn, &lic_id).await?;
        commit(txn).await?;
        self.announce(expiry_seq.unwrap_or(0).max(seq));
        tracing::info!(licence = name, action = action.verb(), "licence changed");
        Ok(updated.to_pb(history, now))
    }
}

type EventStream =
    Pin<Box<dyn Stream<Item = Result<pb::WatchLicenceEventsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl RegistryService for Registry {
    #[tracing::instrument(skip_all)]
    async fn create_institution(
        &self,
        request: Request<pb::CreateInstitutionRequest>,
    ) -> Result<Response<pb::CreateInstitutionResponse>, Status> {
        let ctx = CallContext::from_request(&request)?;
        ctx.require(REGISTRARS)?;
        let req = request.into_inner();
        if !req.request_id.is_empty() {
            idempotency::validate_request_id(&req.request_id, "request_id")?;
        }
        let p = req
            .institution
            .as_ref()
            .ok_or_else(|| ApiError::invalid("institution", "is required"))?;
        let fields = InstitutionFields::parse(p, "institution")?;
        let key = idempotency::Key::of(&ctx, &req.request_id, &req);
        let txn = self.db.begin_write().await?;
        if let Some(key) = &key
            && let Some(r) = key.lookup::<pb::CreateInstitutionResponse>(&txn).await?
        {
            return Ok(Response::new(r));
        }
        if let Some(existing) = store::institution_by_national_id(&txn, &fields.national_id).await?
        {
            return Err(ApiError::already_exists(
                "institution",
                input::institution_name(&existing),
            )
            .into());
        }
        let id = uuid::Uuid::now_v7().to_string();
        let now = now_micros();
        store::insert_institution(&txn, &id, &fields, now).await?;
        audit::append(&txn, &ctx.audit(input::institution_name(&id))).await?;
        let row = store::InstitutionRow::inserted(&id, &fields, now);
        let resp = pb::CreateInstitutionResponse {
            institution: Some(row.to_pb(true)),
        };
        if let Some(key) = &key {
            key.record(&txn, &resp).await?;
        }
        commit(txn).await?;
        tracing::info!(institution = %input::institution_name(&id), "institution registered");
        Ok(Response::new(resp))
    }

    #[tracing::instrument(skip_all)]
    async fn get_institution(
        &self,
        request: Request<pb::GetInstitutionRequest>,
    ) -> Result<Response<pb::GetInstitutionResponse>, Status> {
        let ctx = CallContext::from_request(&request)?;
        ctx.require(READERS)?;
        let id = input::parse_institution_name(&request.get_ref().name, "name")?;
        let row = self.institution_for(&ctx, &id).await?;
        Ok(Response::new(pb::GetInstitutionResponse {
            institution: Some(row.to_pb(sees_personal_data(&ctx, &id))),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_institutions(
        &self,
        request: Request<pb::ListInstitutionsRequest>,
    ) -> Result<Response<pb::ListInstitutionsResponse>, Status> {
        let ctx = CallContext::from_request(&request)?;
        ctx.require(READERS)?;
        let req = request.into_inner();
        let size = pagination::page_size(req.page_size, "page_size")?;
        let area: Option<ActivityArea> = enum_filter(req.activity_area, "activity_area")?;
        let licence_state: Option<pb::LicenceState> =
            enum_filter(req.licence_state, "licence_state")?;
        let mut v = Violations::new();
        let query_key = input::search_term(&mut v, "query", &req.query, input::MAX_QUERY);
        let province_key = input::search_term(&mut v, "province", &req.province, input::MAX_SHORT);
        v.into_result()?;
        let filter = store::InstitutionFilter {
            only_id: (ctx.role() == Role::Institution)
                .then(|| ctx.principal.institution.clone().unwrap_or_default()),
            province_key,
            area: area.map(|a| a as i32),
            licence_state,
            query_key,
            include_dissolved: req.include_dissolved,
        };
        let fp = pagination::fingerprint(&[
            "institutions",
            filter.only_id.as_deref().unwrap_or(""),
            filter.province_key.as_deref().unwrap_or(""),
            &req.activity_area.to_string(),
            &req.licence_state.to_string(),
            filter.query_key.as_deref().unwrap_or(""),
            &req.include_dissolved.to_string(),
        ]);
        let after: Option<String> = pagination::decode(&req.page_token, &fp, "page_token")?;
        let mut rows = store::list_institutions(
            self.db.conn(),
            &filter,
            after.as_deref(),
            size + 1,
            now_micros(),
        )
        .await?;
        let next_page_token = pagination::next_page(&mut rows, size, &fp, |r| r.id.clone());
        Ok(Response::new(pb::ListInstitutionsResponse {
            institutions: rows
                .iter()
                .map(|r| r.to_pb(sees_personal_data(&ctx, &r.id)))
                .collect(),
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn update_institution(
        &self,
        request: Request<pb::UpdateInstitutionRequest>,
    ) -> Result<Response<pb::UpdateInstitutionResponse>, Status> {
        let ctx = CallContext::from_request(&request)?;
        ctx.require(REGISTRARS)?;
        let req = request.into_inner();
        let p = req
            .institution
            .as_ref()
            .ok_or_else(|| ApiError::invalid("institution", "is required"))?;
        let id = input::parse_institution_name(&p.name, "institution.name")?;
        let paths = req
            .update_mask
            .as_ref()
            .map(|m| m.paths.clone())
            .unwrap_or_default();
        let name = input::institution_name(&id);
        let txn = self.db.begin_write().await?;
        let row = store::get_institution(&txn, &id)
            .await?
            .ok_or_else(|| not_found_institution(&id))?;
        check_etag(&p.etag, row.version, &name)?;
        if row.dissolved() {
            let (r, fa) = eligibility_text(pb::EligibilityReason::InstitutionDissolved);
            return Err(
                ApiError::precondition(r, "a dissolved institution cannot be changed", fa).into(),
            );
        }
        let mut fields = row.fields();
        fields.apply_update(p, &paths)?;
        let now = now_micros();
        // Checked in the write transaction that applies the change: a CreateLicence waits
        // for it, so no licence can appear between the check and the commit.
        Self::check_statute_keeps_licensed_areas(
            &txn,
            &id,
            &row.areas(),
            &fields.activity_areas,
            now,
        )
        .await?;
        if !store::update_institution(&txn, &id, row.version, &fields, now).await? {
            return Err(ApiError::stale(&name).into());
        }
        audit::append(&txn, &ctx.audit(name)).await?;
        let row = store::get_institution(&txn, &id)
            .await?
            .ok_or_else(|| not_found_institution(&id))?;
        commit(txn).await?;
        Ok(Response::new(pb::UpdateInstitutionResponse {
            institution: Some(row.to_pb(true)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn dissolve_institution(
        &self,
        request: Request<pb::DissolveInstitutionRequest>,
    ) -> Result<Response<pb::DissolveInstitutionResponse>, Status> {
        let ctx = CallContext::from_request(&request)?;
        ctx.require(REGISTRARS)?;
        let req = request.into_inner();
        let id = input::parse_institution_name(&req.name, "name")?;
        let reason = input::reason(&req.reason, true, "reason")?;
        let name = input::institution_name(&id);
        let now = now_micros();
        let txn = self.db.begin_write().await?;
        let row = store::get_institution(&txn, &id)
            .await?
            .ok_or_else(|| not_found_institution(&id))?;
        check_etag(&req.etag, row.version, &name)?;
        if row.dissolved() {
            let (r, fa) = eligibility_text(pb::EligibilityReason::InstitutionDissolved);
            return Err(
                ApiError::precondition(r, "the institution is already dissolved", fa).into(),
            );
        }
        if !store::dissolve_institution(&txn, &id, row.version, &reason, now).await? {
            return Err(ApiError::stale(&name).into());
        }
        // A dissolved institution's licences end with it, as events its consumers act on.
        let mut last_seq = 0;
        for lic in store::licences_of(&txn, &id).await? {
            let (lic, seq) = Self::materialise_expiry(&txn, &ctx, lic, now).await?;
            last_seq = last_seq.max(seq.unwrap_or(0));
            let action = match lic.stored_state() {
                pb::LicenceState::Active | pb::LicenceState::Suspended => LicenceAction::Revoke,
                pb::LicenceState::Pending => LicenceAction::Reject,
                _ => continue,
            };
            let to =
                domain::next_state(lic.stored_state(), action).unwrap_or(pb::LicenceState::Revoked);
            let lic_name = input::licence_name(&id, &lic.id);
            if !store::set_licence_state(&txn, &lic.id, lic.version, to, None, now).await? {
                return Err(ApiError::stale(&lic_name).into());
            }
            let seq = store::append_event(
                &txn,
                &NewEvent {
                    licence_id: &lic.id,
                    institution_id: &id,
                    kind: action.event_kind(),
                    from: lic.stored_state(),
                    to,
                    actor: store::Actor::of(&ctx),
                    reason: "institution dissolved",
                    traceparent: &mosharekat_platform::telemetry::current_traceparent(),
                },
                now,
            )
            .await?;
            last_seq = last_seq.max(seq);
            audit::append(&txn, &ctx.audit(lic_name)).await?;
        }
        audit::append(&txn, &ctx.audit(name.clone())).await?;
        let row = store::get_institution(&txn, &id)
            .await?
            .ok_or_else(|| not_found_institution(&id))?;
        commit(txn).await?;
        self.announce(last_seq);
        Ok(Response::new(pb::DissolveInstitutionResponse {
            institution: Some(row.to_pb(true)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn create_licence(
        &self,
        request: Request<pb::CreateLicenceRequest>,
    ) -> Result<Response<pb::CreateLicenceResponse>, Status> {
        let ctx = CallContext::from_request(&request)?;
        ctx.require(&[Role::Admin, Role::RegistryOfficer, Role::Institution])?;
        let req = request.into_inner();
        let inst_id = input::parse_institution_name(&req.parent, "parent")?;
        if !visible(&ctx, &inst_id) {
            return Err(not_found_institution(&inst_id).into());
        }
        if !req.request_id.is_empty() {
            idempotency::validate_request_id(&req.request_id, "request_id")?;
        }
        let now = now_micros();
        let p = req
            .licence
            .as_ref()
            .ok_or_else(|| ApiError::invalid("licence", "is required"))?;
        let fields = LicenceFields::parse(p, "licence", now)?;
        let key = idempotency::Key::of(&ctx, &req.request_id, &req);
        let txn = self.db.begin_write().await?;
        if let Some(key) = &key
            && let Some(r) = key.lookup::<pb::CreateLicenceResponse>(&txn).await?
        {
            return Ok(Response::new(r));
        }
        let inst = store::get_institution(&txn, &inst_id)
            .await?
            .ok_or_else(|| not_found_institution(&inst_id))?;
        if inst.dissolved() {
            let (r, fa) = eligibility_text(pb::EligibilityReason::InstitutionDissolved);
            return Err(ApiError::precondition(
                r,
                "a dissolved institution cannot be licensed",
                fa,
            )
            .into());
        }
        let statute = inst.areas();
        let outside: Vec<String> = fields
            .activity_areas
            .iter()
            .filter(|a| !statute.contains(a))
            .map(|a| {
                ActivityArea::try_from(*a)
                    .map(|x| x.as_str_name().to_owned())
                    .unwrap_or_default()
            })
            .collect();
        if !outside.is_empty() {
            let mut e = ApiError::precondition(
                "AREA_NOT_IN_STATUTE",
                format!(
                    "licence.activity_areas must be among the institution's statute areas; not: {}",
                    outside.join(", ")
                ),
                "حوزه‌های مجوز باید از حوزه‌های فعالیت مندرج در اساسنامهٔ نهاد باشند.",
            );
            if let ApiError::FailedPrecondition { metadata, .. } = &mut e {
                metadata.insert("areas".into(), outside.join(","));
            }
            return Err(e.into());
        }
        let id = uuid::Uuid::now_v7().to_string();
        store::insert_licence(&txn, &id, &inst_id, &fields, now).await?;
        let name = input::licence_name(&inst_id, &id);
        let seq = store::append_event(
            &txn,
            &NewEvent {
                licence_id: &id,
                institution_id: &inst_id,
                kind: pb::LicenceEventKind::Applied,
                from: pb::LicenceState::Unspecified,
                to: pb::LicenceState::Pending,
                actor: store::Actor::of(&ctx),
                reason: "",
                traceparent: &mosharekat_platform::telemetry::current_traceparent(),
            },
            now,
        )
        .await?;
        audit::append(&txn, &ctx.audit(name)).await?;
        let row = store::get_licence(&txn, &inst_id, &id)
            .await?
            .ok_or_else(|| not_found_licence(&inst_id, &id))?;
        let history = store::history(&txn, &id).await?;
        let resp = pb::CreateLicenceResponse {
            licence: Some(row.to_pb(history, now)),
        };
        if let Some(key) = &key {
            key.record(&txn, &resp).await?;
        }
        commit(txn).await?;
        self.announce(seq);
        Ok(Response::new(resp))
    }

    #[tracing::instrument(skip_all)]
    async fn get_licence(
        &self,
        request: Request<pb::GetLicenceRequest>,
    ) -> Result<Response<pb::GetLicenceResponse>, Status> {
        let ctx = CallContext::from_request(&request)?;
        ctx.require(READERS)?;
        let (inst_id, id) = input::parse_licence_name(&request.get_ref().name, "name")?;
        if !visible(&ctx, &inst_id) {
            return Err(not_found_licence(&inst_id, &id).into());
        }
        let row = store::get_licence(self.db.conn(), &inst_id, &id)
            .await?
            .ok_or_else(|| not_found_licence(&inst_id, &id))?;
        Ok(Response::new(pb::GetLicenceResponse {
            licence: Some(self.licence_pb(&row, now_micros()).await?),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_licences(
        &self,
        request: Request<pb::ListLicencesRequest>,
    ) -> Result<Response<pb::ListLicencesResponse>, Status> {
        let ctx = CallContext::from_request(&request)?;
        ctx.require(READERS)?;
        let req = request.into_inner();
        let size = pagination::page_size(req.page_size, "page_size")?;
        let state: Option<pb::LicenceState> = enum_filter(req.state, "state")?;
        let inst = if req.parent == "institutions/-" {
            None
        } else {
            Some(input::parse_institution_name(&req.parent, "parent")?)
        };
        // An institution lists only its own, whatever parent it names.
        let inst = match (ctx.role(), inst) {
            (Role::Institution, Some(i)) if !visible(&ctx, &i) => {
                return Err(not_found_institution(&i).into());
            }
            (Role::Institution, _) => ctx.principal.institution.clone(),
            (_, i) => i,
        };
        let fp = pagination::fingerprint(&[
            "licences",
            inst.as_deref().unwrap_or("-"),
            &req.state.to_string(),
        ]);
        let after: Option<String> = pagination::decode(&req.page_token, &fp, "page_token")?;
        let now = now_micros();
        let mut rows = store::list_licences(
            self.db.conn(),
            inst.as_deref(),
            state,
            after.as_deref(),
            size + 1,
            now,
        )
        .await?;
        let next_page_token = pagination::next_page(&mut rows, size, &fp, |r| r.id.clone());
        let mut licences = Vec::with_capacity(rows.len());
        for r in &rows {
            licences.push(self.licence_pb(r, now).await?);
        }
        Ok(Response::new(pb::ListLicencesResponse {
            licences,
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn approve_licence(
        &self,
        request: Request<pb::ApproveLicenceRequest>,
    ) -> Result<Response<pb::ApproveLicenceResponse>, Status> {
        let ctx = CallContext::from_request(&request)?;
        let r = request.into_inner();
        let licence = self
            .transition(
                ctx,
                &r.name,
                &r.etag,
                &r.reason,
                LicenceAction::Approve,
                None,
            )
            .await?;
        Ok(Response::new(pb::ApproveLicenceResponse {
            licence: Some(licence),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn reject_licence(
        &self,
        request: Request<pb::RejectLicenceRequest>,
    ) -> Result<Response<pb::RejectLicenceResponse>, Status> {
        let ctx = CallContext::from_request(&request)?;
        let r = request.into_inner();
        let licence = self
            .transition(
                ctx,
                &r.name,
                &r.etag,
                &r.reason,
                LicenceAction::Reject,
                None,
            )
            .await?;
        Ok(Response::new(pb::RejectLicenceResponse {
            licence: Some(licence),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn suspend_licence(
        &self,
        request: Request<pb::SuspendLicenceRequest>,
    ) -> Result<Response<pb::SuspendLicenceResponse>, Status> {
        let ctx = CallContext::from_request(&request)?;
        let r = request.into_inner();
        let licence = self
            .transition(
                ctx,
                &r.name,
                &r.etag,
                &r.reason,
                LicenceAction::Suspend,
                None,
            )
            .await?;
        Ok(Response::new(pb::SuspendLicenceResponse {
            licence: Some(licence),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn reinstate_licence(
        &self,
        request: Request<pb::ReinstateLicenceRequest>,
    ) -> Result<Response<pb::ReinstateLicenceResponse>, Status> {
        let ctx = CallContext::from_request(&request)?;
        let r = request.into_inner();
        let licence = self
            .transition(
                ctx,
                &r.name,
                &r.etag,
                &r.reason,
                LicenceAction::Reinstate,
                None,
            )
            .await?;
        Ok(Response::new(pb::ReinstateLicenceResponse {
            licence: Some(licence),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn revoke_licence(
        &self,
        request: Request<pb::RevokeLicenceRequest>,
    ) -> Result<Response<pb::RevokeLicenceResponse>, Status> {
        let ctx = CallContext::from_request(&request)?;
        let r = request.into_inner();
        let licence = self
            .transition(
                ctx,
                &r.name,
                &r.etag,
                &r.reason,
                LicenceAction::Revoke,
                None,
            )
            .await?;
        Ok(Response::new(pb::RevokeLicenceResponse {
            licence: Some(licence),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn renew_licence(
        &self,
        request: Request<pb::RenewLicenceRequest>,
    ) -> Result<Response<pb::RenewLicenceResponse>, Status> {
        let ctx = CallContext::from_request(&request)?;
        let r = request.into_inner();
        let licence = self
            .transition(
                ctx,
                &r.name,
                &r.etag,
                &r.reason,
                LicenceAction::Renew,
                r.valid_until.as_ref(),
            )
            .await?;
        Ok(Response::new(pb::RenewLicenceResponse {
            licence: Some(licence),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn check_eligibility(
        &self,
        request: Request<pb::CheckEligibilityRequest>,
    ) -> Result<Response<pb::CheckEligibilityResponse>, Status> {
        let ctx = CallContext::from_request(&request)?;
        ctx.require(ELIGIBILITY_ASKERS)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = v.check(
            "institution",
            input::parse_institution_name(&req.institution, "institution")
                .map_err(|_| "must be institutions/{id}"),
        );
        let action = match pb::PermittedAction::try_from(req.action) {
            Ok(pb::PermittedAction::Unspecified) | Err(_) => {
                v.add(
                    "action",
                    "must be FILE_LAWSUIT, REPORT_CRIME, FILE_COMPLAINT or ACCEPT_REFERRALS",
                );
                None
            }
            Ok(a) => Some(a),
        };
        let area = match ActivityArea::try_from(req.activity_area) {
            Ok(ActivityArea::Unspecified) | Err(_) => {
                v.add("activity_area", "must be one of the 23 activity areas");
                None
            }
            Ok(a) => Some(a),
        };
        let province = input::search_term(&mut v, "province", &req.province, input::MAX_SHORT);
        v.into_result()?;
        let (Some(id), Some(action), Some(area)) = (id, action, area) else {
            return Err(ApiError::invalid("", "invalid request").into());
        };
        let inst = self.institution_for(&ctx, &id).await?;
        let now = now_micros();
        let licences = store::licences_of(self.db.conn(), &id).await?;
        let facts: Vec<_> = licences.iter().map(|l| l.facts(now)).collect();
        let (reason, licence) = domain::decide_eligibility(
            inst.dissolved(),
            &facts,
            action,
            area,
            province.as_deref(),
            now,
        );
        Ok(Response::new(pb::CheckEligibilityResponse {
            eligible: reason == pb::EligibilityReason::Eligible,
            reason: reason as i32,
            licence: licence
                .map(|l| input::licence_name(&id, &l))
                .unwrap_or_default(),
            institution_province: inst.province,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn check_licensed(
        &self,
        request: Request<pb::CheckLicensedRequest>,
    ) -> Result<Response<pb::CheckLicensedResponse>, Status> {
        let ctx = CallContext::from_request(&request)?;
        ctx.require(ELIGIBILITY_ASKERS)?;
        let req = request.into_inner();
        let id = input::parse_institution_name(&req.institution, "institution")?;
        let mut v = Violations::new();
        let province = input::search_term(&mut v, "province", &req.province, input::MAX_SHORT);
        v.into_result()?;
        let inst = self.institution_for(&ctx, &id).await?;
        let now = now_micros();
        let licences = store::licences_of(self.db.conn(), &id).await?;
        let facts: Vec<_> = licences.iter().map(|l| l.facts(now)).collect();
        let (reason, licence) =
            domain::decide_licensed(inst.dissolved(), &facts, province.as_deref(), now);
        Ok(Response::new(pb::CheckLicensedResponse {
            licensed: reason == pb::EligibilityReason::Eligible,
            reason: reason as i32,
            licence: licence
                .map(|l| input::licence_name(&id, &l))
                .unwrap_or_default(),
            display_name: inst.display_name,
        }))
    }

    type WatchLicenceEventsStream = EventStream;

    #[tracing::instrument(skip_all)]
    async fn watch_licence_events(
        &self,
        request: Request<pb::WatchLicenceEventsRequest>,
    ) -> Result<Response<Self::WatchLicenceEventsStream>, Status> {
        let ctx = CallContext::from_request(&request)?;
        ctx.require(EVENT_WATCHERS)?;
        let after = request.get_ref().after_sequence;
        if after < 0 {
            return Err(ApiError::invalid("after_sequence", "must not be negative").into());
        }
        Ok(Response::new(crate::events::watch(self.clone(), after)))
    }
}
