//! The work behind the handlers: working groups, seats, meetings and resolutions read,
//! checked and changed, each change in one transaction with its audit record.

use mosharekat_api::meeting::v1 as pb;
use mosharekat_persian::{NationalCode, normalize_name, normalize_text};
use mosharekat_platform::auth::Role;
use mosharekat_platform::ctx::CallContext;
use mosharekat_platform::db::WriteTxn;
use mosharekat_platform::db::{Db, check_etag, commit, from_timestamp, now_micros, to_timestamp};
use mosharekat_platform::error::{ApiError, Violations};
use mosharekat_platform::{audit, idempotency, pagination};
use mosharekat_referral_client::ReferralPeer;
use mosharekat_registry_client::{RegistryPeer, reason_token};

use crate::canonical::MinutesHashVersion;
use crate::names::{GroupName, MeetingName, MemberName, ResolutionName, valid_id};
use crate::rules::{self, MeetingAction};
use crate::store::{self, Record, Where};

/// Everything the handlers share.
#[derive(Clone, Debug)]
pub struct Meetings {
    pub(crate) db: Db,
    pub(crate) registry: RegistryPeer,
    pub(crate) referral: ReferralPeer,
}

pub const MANAGERS: &[Role] = &[Role::Admin, Role::Secretary];
pub const READERS: &[Role] = &[
    Role::Admin,
    Role::Secretary,
    Role::Member,
    Role::Auditor,
    Role::Service,
];

fn state_name(s: i32) -> String {
    pb::MeetingState::try_from(s)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("MEETING_STATE_")
                .to_owned()
        })
        .unwrap_or_default()
}

fn sees_personal_data(ctx: &CallContext) -> bool {
    matches!(ctx.role(), Role::Admin | Role::Secretary | Role::Auditor)
}

fn time(t: &Option<prost_types::Timestamp>, field: &str, v: &mut Violations) -> Option<i64> {
    let t = t.as_ref()?;
    let us = from_timestamp(t);
    if us.is_none() {
        v.add(field, "must be a time between 1900 and 2200");
    }
    us
}

impl Meetings {
    // ---------- working groups ----------

    fn finish_group(rec: Record<pb::WorkingGroup>) -> pb::WorkingGroup {
        pb::WorkingGroup {
            etag: rec.version.to_string(),
            ..rec.body
        }
    }

    pub async fn create_group(
        &self,
        ctx: &CallContext,
        req: &pb::CreateWorkingGroupRequest,
    ) -> Result<pb::WorkingGroup, ApiError> {
        ctx.require(MANAGERS)?;
        if !req.request_id.is_empty() {
            idempotency::validate_request_id(&req.request_id, "request_id")?;
        }
        let src = req
            .working_group
            .as_ref()
            .ok_or_else(|| ApiError::invalid("working_group", "is required"))?;
        let mut v = Violations::new();
        let province = v
            .check("working_group.province", normalize_name(&src.province, 100))
            .unwrap_or_default();
        let title = v
            .check("working_group.title", normalize_name(&src.title, 300))
            .unwrap_or_default();
        time(&src.founding_time, "working_group.founding_time", &mut v);
        v.into_result()?;
        let key = idempotency::Key::of(ctx, &req.request_id, req);
        let now = now_micros();
        let id = uuid::Uuid::now_v7().to_string();
        let gname = GroupName::new(id.clone());
        let g = pb::WorkingGroup {
            name: gname.to_string(),
            province,
            title,
            founding_time: src.founding_time.or(Some(to_timestamp(now))),
            create_time: Some(to_timestamp(now)),
            update_time: Some(to_timestamp(now)),
            etag: String::new(),
        };
        let txn = self.db.begin_write().await?;
        if let Some(key) = &key
            && let Some(r) = key.lookup::<pb::CreateWorkingGroupResponse>(&txn).await?
        {
            return r.working_group.ok_or_else(|| {
                ApiError::internal(anyhow::anyhow!("stored response without a group"))
            });
        }
        store::insert_group(&txn, &id, &g).await?;
        audit::append(&txn, &ctx.audit(g.name.clone())).await?;
        let out = Self::finish_group(store::group(&txn, &gname).await?);
        if let Some(key) = &key {
            let resp = pb::CreateWorkingGroupResponse {
                working_group: Some(out.clone()),
            };
            key.record(&txn, &resp).await?;
        }
        commit(txn).await?;
        Ok(out)
    }

    pub async fn get_group(
        &self,
        ctx: &CallContext,
        name: &str,
    ) -> Result<pb::WorkingGroup, ApiError> {
        ctx.require(READERS)?;
        let name = GroupName::parse(name, "name")?;
        Ok(Self::finish_group(
            store::group(self.db.conn(), &name).await?,
        ))
    }

    pub async fn list_groups(
        &self,
        ctx: &CallContext,
        req: &pb::ListWorkingGroupsRequest,
    ) -> Result<pb::ListWorkingGroupsResponse, ApiError> {
        ctx.require(READERS)?;
        let size = pagination::page_size(req.page_size, "page_size")?;
        if req.province.chars().count() > 100 {
            return Err(ApiError::invalid(
                "province",
                "must be at most 100 characters",
            ));
        }
        let key = mosharekat_persian::fold_for_search(&req.province);
        let fp = pagination::fingerprint(&["working-groups", &key]);
        let mut w = Where::new();
        if !key.is_empty() {
            w.add("province_key = ?", [key.clone().into()]);
        }
        if let Some(last) = pagination::decode::<String>(&req.page_token, &fp, "page_token")? {
            w.add("id > ?", [last.into()]);
        }
        let mut rows: Vec<Record<pb::WorkingGroup>> =
            store::groups(self.db.conn(), w, size + 1).await?;
        let next_page_token = pagination::next_page(&mut rows, size, &fp, |r| r.id.clone());
        Ok(pb::ListWorkingGroupsResponse {
            working_groups: rows.into_iter().map(Self::finish_group).collect(),
            next_page_token,
        })
    }

    pub async fn update_group(
        &self,
        ctx: &CallContext,
        req: &pb::UpdateWorkingGroupRequest,
    ) -> Result<pb::WorkingGroup, ApiError> {
        ctx.require(MANAGERS)?;
        let src = req
            .working_group
            .as_ref()
            .ok_or_else(|| ApiError::invalid("working_group", "is required"))?;
        let gname = GroupName::parse(&src.name, "working_group.name")?;
        let paths = req
            .update_mask
            .as_ref()
            .map(|m| m.paths.clone())
            .unwrap_or_default();
        let txn = self.db.begin_write().await?;
        let rec = store::group(&txn, &gname).await?;
        check_etag(&src.etag, rec.version, &src.name)?;
        let mut g = rec.body.clone();
        let mut v = Violations::new();
        if paths.is_empty() {
            v.add("update_mask", "must name at least one field to change");
        }
        for (i, p) in paths.iter().enumerate() {
            match p.as_str() {
                "title" => {
                    g.title = v
                        .check("working_group.title", normalize_name(&src.title, 300))
                        .unwrap_or_default()
                }
                "founding_time" => {
                    if time(&src.founding_time, "working_group.founding_time", &mut v).is_some() {
                        g.founding_time = src.founding_time;
                    }
                }
                other => v.add(
                    format!("update_mask.paths[{i}]"),
                    format!("{other:?} is not an updatable field; use title or founding_time"),
                ),
            }
        }
        v.into_result()?;
        g.update_time = Some(to_timestamp(now_micros()));
        if !store::save_group(&txn, gname.id(), rec.version, &g, &rec.extra).await? {
            return Err(ApiError::stale(&src.name));
        }
        audit::append(&txn, &ctx.audit(g.name.clone())).await?;
        let out = Self::finish_group(store::group(&txn, &gname).await?);
        commit(txn).await?;
        Ok(out)
    }

    // ---------- members ----------

    fn finish_member(ctx: &CallContext, rec: Record<pb::Member>) -> pb::Member {
        let mut m = rec.body;
        m.etag = rec.version.to_string();
        if !sees_personal_data(ctx) {
            m.national_code = mosharekat_persian::mask(&m.national_code);
        }
        m
    }

    pub async fn seat(
        &self,
        ctx: &CallContext,
        req: &pb::SeatMemberRequest,
    ) -> Result<pb::Member, ApiError> {
        ctx.require(MANAGERS)?;
        let gname = GroupName::parse(&req.parent, "parent")?;
        if !req.request_id.is_empty() {
            idempotency::validate_request_id(&req.request_id, "request_id")?;
        }
        let src = req
            .member
            .as_ref()
            .ok_or_else(|| ApiError::invalid("member", "is required"))?;
        let mut v = Violations::new();
        let full_name = v
            .check("member.full_name", normalize_name(&src.full_name, 200))
            .unwrap_or_default();
        let national_code = v
            .check(
                "member.national_code",
                NationalCode::parse(&src.national_code),
            )
            .map(|c| c.as_str().to_owned())
            .unwrap_or_default();
        let seat = pb::Seat::try_from(src.seat).unwrap_or(pb::Seat::Unspecified);
        if seat == pb::Seat::Unspecified {
            v.add(
                "member.seat",
                "must be CHAIR, OFFICIAL, INSTITUTION_REPRESENTATIVE or SECRETARY",
            );
        }
        let position = match (seat, pb::Position::try_from(src.position)) {
            (pb::Seat::Chair, _) => pb::Position::SocialPreventionDeputy,
            (pb::Seat::InstitutionRepresentative, _) => pb::Position::InstitutionRepresentative,
            (pb::Seat::Secretary, _) => pb::Position::Secretariat,
            (
                _,
                Ok(
                    p @ (pb::Position::ChiefInspector
                    | pb::Position::ProsecutorDeputy
                    | pb::Position::PrisonsDirectorGeneral
                    | pb::Position::DisputeResolutionHead
                    | pb::Position::PopularParticipationDirector),
                ),
            ) => p,
            _ => {
                v.add(
                    "member.position",
                    "an official's position must be one of the working group's official positions",
                );
                pb::Position::Unspecified
            }
        };
        let position_title = v
            .check(
                "member.position_title",
                normalize_text(&src.position_title, 300),
            )
            .unwrap_or_default();
        let institution = if seat == pb::Seat::InstitutionRepresentative {
            match src.institution.strip_prefix("institutions/") {
                Some(i) if valid_id(i) => src.institution.clone(),
                _ => {
                    v.add(
                        "member.institution",
                        "a representative's institution must be institutions/{id}",
                    );
                    String::new()
                }
            }
        } else {
            String::new()
        };
        let start = time(&src.term_start, "member.term_start", &mut v);
        v.into_result()?;
        let group = store::group(self.db.conn(), &gname).await?;
        if seat == pb::Seat::InstitutionRepresentative {
            let answer = self
                .registry
                .licensed(ctx, &institution, &group.body.province)
                .await?;
            if !answer.licensed {
                let reason = reason_token(answer.reason);
                return Err(ApiError::precondition(
                    reason.clone(),
                    format!(
                        "a representative's institution must hold a licence in force: {reason}"
                    ),
                    "نمایندهٔ نهاد مردمی باید از نهادی دارای مجوز معتبر از دستگاه قضایی باشد.",
                ));
            }
        }
        let key = idempotency::Key::of(ctx, &req.request_id, req);
        let now = now_micros();
        let id = uuid::Uuid::now_v7().to_string();
        let mname = MemberName::new(gname.clone(), id.clone());
        let m = pb::Member {
            name: mname.to_string(),
            full_name,
            national_code,
            seat: seat as i32,
            position: position as i32,
            position_title,
            institution,
            term_start: Some(to_timestamp(start.unwrap_or(now))),
            term_end: None,
            voting: rules::seat_votes(seat as i32),
            vacant: false,
            vacancy_reason: String::new(),
            etag: String::new(),
        };
        let txn = self.db.begin_write().await?;
        if let Some(key) = &key
            && let Some(r) = key.lookup::<pb::SeatMemberResponse>(&txn).await?
        {
            return r.member.ok_or_else(|| {
                ApiError::internal(anyhow::anyhow!("stored response without a member"))
            });
        }
        let seated: Vec<pb::Member> = store::seated(&txn, gname.id())
            .await?
            .into_iter()
            .map(|r| r.body)
            .collect();
        rules::check_seat(&seated, &m)
            .map_err(|r| ApiError::precondition(r.reason(), r.message(), r.persian()))?;
        store::insert_member(&txn, &id, gname.id(), &m).await?;
        audit::append(&txn, &ctx.audit(m.name.clone())).await?;
        let rec = store::member(&txn, &mname).await?;
        let out = Self::finish_member(ctx, rec);
        if let Some(key) = &key {
            key.record(
                &txn,
                &pb::SeatMemberResponse {
                    member: Some(out.clone()),
                },
            )
            .await?;
        }
        commit(txn).await?;
        Ok(out)
    }

    pub async fn list_members(
        &self,
        ctx: &CallContext,
        req: &pb::ListMembersRequest,
    ) -> Result<Vec<pb::Member>, ApiError> {
        ctx.require(READERS)?;
        let gname = GroupName::parse(&req.parent, "parent")?;
        store::group(self.db.conn(), &gname).await?;
        Ok(store::seated(self.db.conn(), gname.id())
            .await?
            .into_iter()
            .filter(|r| req.include_vacant || !r.body.vacant)
            .map(|r| Self::finish_member(ctx, r))
            .collect())
    }

    pub async fn unseat(
        &self,
        ctx: &CallContext,
        req: &pb::UnseatMemberRequest,
    ) -> Result<pb::Member, ApiError> {
        ctx.require(MANAGERS)?;
        let name = MemberName::parse(&req.name, "name")?;
        let reason = normalize_text(&req.reason, 2000)
            .map_err(|e| ApiError::invalid("reason", e.to_string()))?;
        let txn = self.db.begin_write().await?;
        let rec = store::member(&txn, &name).await?;
        check_etag(&req.etag, rec.version, &req.name)?;
        if rec.body.term_end.is_some() {
            return Err(ApiError::precondition(
                "MEMBER_NOT_SEATED",
                "the member's term has already ended",
                "دورهٔ عضویت این عضو پیش‌تر پایان یافته است.",
            ));
        }
        let mut m = rec.body.clone();
        m.term_end = Some(to_timestamp(now_micros()));
        if !reason.is_empty() {
            m.vacancy_reason = reason;
        }
        if !store::save_member(&txn, name.id(), rec.version, &m, &rec.extra).await? {
            return Err(ApiError::stale(&req.name));
        }
        audit::append(&txn, &ctx.audit(m.name.clone())).await?;
        let rec = store::member(&txn, &name).await?;
        commit(txn).await?;
        Ok(Self::finish_member(ctx, rec))
    }

    /// Flags an institution's representatives' seats vacant (inside the event consumer's
    /// transaction) when its licence is lost.
    pub async fn vacate_seats_of(
        txn: &WriteTxn,
        institution_id: &str,
        why: &str,
        ctx: &CallContext,
    ) -> Result<usize, ApiError> {
        let mut n = 0;
        for rec in store::representatives_of(txn, institution_id).await? {
            if rec.body.vacant {
                continue;
            }
            let mut m = rec.body.clone();
            m.vacant = true;
            m.vacancy_reason = why.to_owned();
            if !store::save_member(txn, &rec.id, rec.version, &m, &rec.extra).await? {
                return Err(ApiError::stale(&m.name));
            }
            audit::append(txn, &ctx.audit(m.name.clone())).await?;
            n += 1;
        }
        Ok(n)
    }

    // ---------- meetings ----------

    /// Whom a meeting counts: the roster fixed when it started; before it starts (or for a
    /// meeting started before rosters were kept) the members seated now.
    async fn roster_of<C: sea_orm::ConnectionTrait>(
        c: &C,
        group: &GroupName,
        m: &pb::Meeting,
    ) -> Result<Vec<pb::Member>, ApiError> {
        if !m.roster.is_empty() {
            return Ok(m.roster.clone());
        }
        Ok(store::seated(c, group.id())
            .await?
            .into_iter()
            .map(|r| r.body)
            .collect())
    }

    /// The meeting as callers see it: its resolutions, and the quorum counted on its roster
    /// (today's seats before it starts; as of the minutes, once approved).
    pub async fn finish_meeting<C: sea_orm::ConnectionTrait>(
        &self,
        c: &C,
        group: &GroupName,
        rec: Record<pb::Meeting>,
    ) -> Result<pb::Meeting, ApiError> {
        let mut m = rec.body;
        m.etag = rec.version.to_string();
        if m.state != pb::MeetingState::Closed as i32 {
            let members = Self::roster_of(c, group, &m).await?;
            m.quorum = Some(rules::quorum(&members, &m));
            let now = now_micros();
            m.resolutions = store::resolutions_of(c, &store::meeting_id(group.id(), m.number))
                .await?
                .into_iter()
                .map(|r| finish_resolution(r, now))
                .collect();
        }
        Ok(m)
    }

    pub async fn schedule(
        &self,
        ctx: &CallContext,
        req: &pb::ScheduleMeetingRequest,
    ) -> Result<pb::Meeting, ApiError> {
        ctx.require(MANAGERS)?;
        let gname = GroupName::parse(&req.parent, "parent")?;
        if !req.request_id.is_empty() {
            idempotency::validate_request_id(&req.request_id, "request_id")?;
        }
        let src = req
            .meeting
            .as_ref()
            .ok_or_else(|| ApiError::invalid("meeting", "is required"))?;
        let mut v = Violations::new();
        let title = v
            .check("meeting.title", normalize_name(&src.title, 300))
            .unwrap_or_default();
        let place = v
            .check("meeting.place", normalize_name(&src.place, 300))
            .unwrap_or_default();
        if src.scheduled_time.is_none() {
            v.add("meeting.scheduled_time", "is required");
        }
        time(&src.scheduled_time, "meeting.scheduled_time", &mut v);
        v.into_result()?;
        let key = idempotency::Key::of(ctx, &req.request_id, req);
        let txn = self.db.begin_write().await?;
        if let Some(key) = &key
            && let Some(r) = key.lookup::<pb::ScheduleMeetingResponse>(&txn).await?
        {
            return r.meeting.ok_or_else(|| {
                ApiError::internal(anyhow::anyhow!("stored response without a meeting"))
            });
        }
        store::group(&txn, &gname).await?;
        let number = store::next_meeting_number(&txn, gname.id()).await?;
        let mname = MeetingName::new(gname.clone(), number);
        let m = pb::Meeting {
            name: mname.to_string(),
            number,
            title,
            place,
            scheduled_time: src.scheduled_time,
            state: pb::MeetingState::Scheduled as i32,
            ..Default::default()
        };
        store::insert_meeting(&txn, gname.id(), &m).await?;
        audit::append(&txn, &ctx.audit(m.name.clone())).await?;
        let rec = store::meeting(&txn, &mname).await?;
        let out = self.finish_meeting(&txn, &gname, rec).await?;
        if let Some(key) = &key {
            key.record(
                &txn,
                &pb::ScheduleMeetingResponse {
                    meeting: Some(out.clone()),
                },
            )
            .await?;
        }
        commit(txn).await?;
        Ok(out)
    }

    pub async fn get_meeting(
        &self,
        ctx: &CallContext,
        name: &str,
    ) -> Result<pb::Meeting, ApiError> {
        ctx.require(READERS)?;
        let name = MeetingName::parse(name, "name")?;
        let rec = store::meeting(self.db.conn(), &name).await?;
        self.finish_meeting(self.db.conn(), name.group(), rec).await
    }

    pub async fn list_meetings(
        &self,
        ctx: &CallContext,
        req: &pb::ListMeetingsRequest,
    ) -> Result<pb::ListMeetingsResponse, ApiError> {
        ctx.require(READERS)?;
        let gname = GroupName::parse(&req.parent, "parent")?;
        let size = pagination::page_size(req.page_size, "page_size")?;
        let fp = pagination::fingerprint(&["meetings", gname.id()]);
        let after = pagination::decode::<i32>(&req.page_token, &fp, "page_token")?;
        let mut rows = store::meetings_page(self.db.conn(), gname.id(), after, size + 1).await?;
        let next_page_token = pagination::next_page(&mut rows, size, &fp, |r| r.body.number);
        let mut meetings = Vec::with_capacity(rows.len());
        for r in rows {
            meetings.push(self.finish_meeting(self.db.conn(), &gname, r).await?);
        }
        Ok(pb::ListMeetingsResponse {
            meetings,
            next_page_token,
        })
    }

    /// One change of a meeting: checked against its life cycle, applied, recorded. `apply`
    /// is given whom the meeting counts: its roster once started, today's seats before.
    pub async fn change_meeting(
        &self,
        ctx: &CallContext,
        name: &str,
        etag: &str,
        action: MeetingAction,
        apply: impl AsyncFnOnce(&WriteTxn, &mut pb::Meeting, &[pb::Member]) -> Result<(), ApiError>,
    ) -> Result<pb::Meeting, ApiError> {
        ctx.require(MANAGERS)?;
        let mname = MeetingName::parse(name, "name")?;
        let txn = self.db.begin_write().await?;
        let rec = store::meeting(&txn, &mname).await?;
        check_etag(etag, rec.version, name)?;
        let from =
            pb::MeetingState::try_from(rec.body.state).unwrap_or(pb::MeetingState::Unspecified);
        let to = rules::next_meeting_state(from, action).ok_or_else(|| {
            ApiError::precondition(
                "MEETING_STATE_CONFLICT",
                format!(
                    "cannot {} a meeting that is {}",
                    action.verb(),
                    state_name(from as i32)
                ),
                if from == pb::MeetingState::Closed {
                    "صورتجلسه تأیید شده و جلسه دیگر تغییرپذیر نیست.".to_owned()
                } else {
                    format!(
                        "این اقدام در وضعیت کنونی جلسه ({}) ممکن نیست.",
                        state_name(from as i32)
                    )
                },
            )
        })?;
        let members = Self::roster_of(&txn, mname.group(), &rec.body).await?;
        let mut m = rec.body.clone();
        apply(&txn, &mut m, &members).await?;
        m.state = to as i32;
        if !store::save_meeting(&txn, &rec.id, rec.version, &m, &rec.extra).await? {
            return Err(ApiError::stale(name));
        }
        audit::append(&txn, &ctx.audit(name.to_owned())).await?;
        let rec = store::meeting(&txn, &mname).await?;
        let out = self.finish_meeting(&txn, mname.group(), rec).await?;
        commit(txn).await?;
        Ok(out)
    }

    /// Checks an agenda: titles, and every pointer with the service that owns it.
    pub async fn check_agenda(
        &self,
        ctx: &CallContext,
        items: &[pb::AgendaItem],
    ) -> Result<Vec<pb::AgendaItem>, ApiError> {
        let mut v = Violations::new();
        let mut out = Vec::with_capacity(items.len());
        if items.len() > 100 {
            v.add("items", "must be at most 100");
        }
        for (i, it) in items.iter().enumerate() {
            let title = v
                .check(format!("items[{i}].title"), normalize_name(&it.title, 300))
                .unwrap_or_default();
            let description = v
                .check(
                    format!("items[{i}].description"),
                    normalize_text(&it.description, 5000),
                )
                .unwrap_or_default();
            let subject = it.subject.trim().to_owned();
            let well_formed = subject.is_empty()
                || ["institutions/", "filings/", "referrals/"]
                    .iter()
                    .any(|p| subject.strip_prefix(p).is_some_and(valid_id));
            if !well_formed {
                v.add(
                    format!("items[{i}].subject"),
                    "must be institutions/{id}, filings/{id} or referrals/{id}",
                );
            }
            out.push(pb::AgendaItem {
                title,
                description,
                subject,
                standing_report: it.standing_report,
                figures: Vec::new(),
            });
        }
        v.into_result()?;
        let mut missing = Violations::new();
        for (i, it) in out.iter().enumerate() {
            if it.subject.is_empty() {
                continue;
            }
            let found = if it.subject.starts_with("institutions/") {
                self.registry.institution_exists(ctx, &it.subject).await?
            } else {
                self.referral.case_exists(ctx, &it.subject).await?
            };
            if !found {
                missing.add(
                    format!("items[{i}].subject"),
                    format!("{} does not exist", it.subject),
                );
            }
        }
        missing.into_result()?;
        Ok(out)
    }

    /// The standing report's figures: the referral service's statistics for the group's
    /// province over the year before the meeting.
    pub async fn standing_report(
        &self,
        ctx: &CallContext,
        province: &str,
        at: i64,
    ) -> Result<Vec<pb::StatisticFigure>, ApiError> {
        let s = self
            .referral
            .statistics(
                ctx,
                mosharekat_api::referral::v1::GetStatisticsRequest {
                    province: province.to_owned(),
                    start_time: Some(to_timestamp(at - 365 * 86_400_000_000)),
                    end_time: Some(to_timestamp(at)),
                },
            )
            .await?;
        let f = |label: &str, value: String| pb::StatisticFigure {
            label: label.into(),
            value,
        };
        Ok(vec![
            f(
                "پرونده‌های طرح‌شده از سوی نهادها",
                s.filings_total.to_string(),
            ),
            f("ارجاع‌ها به نهادها", s.referrals_total.to_string()),
            f("ارجاع‌های به نتیجه رسیده", s.resolved_count.to_string()),
            f("نرخ سازش", format!("{:.0}%", s.reconciliation_rate * 100.0)),
            f(
                "میانهٔ روزهای رسیدگی",
                format!("{:.1}", s.median_days_to_resolve),
            ),
            f("ارجاع‌های دارای تأخیر", s.overdue_count.to_string()),
        ])
    }

    pub async fn record_attendance(
        &self,
        ctx: &CallContext,
        req: &pb::RecordAttendanceRequest,
    ) -> Result<pb::Meeting, ApiError> {
        let entries = req.attendance.clone();
        let deputy = req.deputy_chair.clone();
        self.change_meeting(
            ctx,
            &req.name,
            &req.etag,
            MeetingAction::RecordAttendance,
            async move |_, m, members| {
                let mut v = Violations::new();
                for (i, a) in entries.iter().enumerate() {
                    if !members.iter().any(|x| x.name == a.member) {
                        v.add(
                            format!("attendance[{i}].member"),
                            "must be a seated member of this working group",
                        );
                    }
                    match pb::AttendanceStatus::try_from(a.status) {
                        Ok(pb::AttendanceStatus::Unspecified) | Err(_) => v.add(
                            format!("attendance[{i}].status"),
                            "must be PRESENT, ABSENT, EXCUSED or REPRESENTED",
                        ),
                        Ok(pb::AttendanceStatus::Represented)
                            if a.substitute_name.trim().is_empty() =>
                        {
                            v.add(
                                format!("attendance[{i}].substitute_name"),
                                "a represented member's substitute must be named",
                            )
                        }
                        _ => {}
                    }
                }
                if !deputy.is_empty()
                    && !members
                        .iter()
                        .any(|x| x.name == deputy && x.voting && x.seat != pb::Seat::Chair as i32)
                {
                    v.add(
                        "deputy_chair",
                        "must be a seated voting member other than the chair",
                    );
                }
                v.into_result()?;
                for a in entries {
                    let substitute_name = if a.status == pb::AttendanceStatus::Represented as i32 {
                        normalize_name(&a.substitute_name, 200).map_err(|e| {
                            ApiError::invalid("attendance.substitute_name", e.to_string())
                        })?
                    } else {
                        String::new()
                    };
                    m.attendance.retain(|x| x.member != a.member);
                    m.attendance.push(pb::Attendance {
                        member: a.member,
                        status: a.status,
                        substitute_name,
                    });
                }
                if !deputy.is_empty() {
                    m.deputy_chair = deputy;
                }
                Ok(())
            },
        )
        .await
    }

    pub async fn start(
        &self,
        ctx: &CallContext,
        name: &str,
        etag: &str,
    ) -> Result<pb::Meeting, ApiError> {
        self.change_meeting(
            ctx,
            name,
            etag,
            MeetingAction::Start,
            async |_, m, members| {
                let q = rules::quorum(members, m);
                if !q.met {
                    let mut e = ApiError::precondition(
                        "NO_QUORUM",
                        format!("the meeting cannot start without quorum: {}", q.explanation),
                        "جلسه به حد نصاب نرسیده است.",
                    );
                    if let ApiError::FailedPrecondition { metadata, .. } = &mut e {
                        metadata.insert("voting_present".into(), q.voting_present.to_string());
                        metadata.insert("required".into(), q.required.to_string());
                    }
                    return Err(e);
                }
                // The roster is fixed now: a seat falling vacant later changes later
                // meetings, not this one's attendance, quorum, votes or minutes.
                m.roster = rules::roster_snapshot(members);
                m.quorum = Some(q);
                m.start_time = Some(to_timestamp(now_micros()));
                Ok(())
            },
        )
        .await
    }

    pub async fn record_resolution(
        &self,
        ctx: &CallContext,
        req: &pb::RecordResolutionRequest,
    ) -> Result<pb::Resolution, ApiError> {
        ctx.require(MANAGERS)?;
        let mname = MeetingName::parse(&req.name, "name")?;
        if !req.request_id.is_empty() {
            idempotency::validate_request_id(&req.request_id, "request_id")?;
        }
        let mut v = Violations::new();
        let text = v
            .check("text", normalize_text(&req.text, 5000))
            .unwrap_or_default();
        if text.is_empty() {
            v.add("text", "must not be empty");
        }
        let body = v
            .check(
                "responsible_body",
                normalize_text(&req.responsible_body, 300),
            )
            .unwrap_or_default();
        let deadline = time(&req.deadline, "deadline", &mut v);
        let mut votes = Vec::new();
        for (i, cv) in req.votes.iter().enumerate() {
            match pb::Vote::try_from(cv.vote) {
                Ok(pb::Vote::Unspecified) | Err(_) => v.add(
                    format!("votes[{i}].vote"),
                    "must be FOR, AGAINST or ABSTAIN",
                ),
                Ok(x) => votes.push((i, cv.member.clone(), x)),
            }
        }
        v.into_result()?;
        let key = idempotency::Key::of(ctx, &req.request_id, req);
        let txn = self.db.begin_write().await?;
        if let Some(key) = &key
            && let Some(r) = key.lookup::<pb::RecordResolutionResponse>(&txn).await?
        {
            return r.resolution.ok_or_else(|| {
                ApiError::internal(anyhow::anyhow!("stored response without a resolution"))
            });
        }
        let rec = store::meeting(&txn, &mname).await?;
        if rules::next_meeting_state(
            pb::MeetingState::try_from(rec.body.state).unwrap_or(pb::MeetingState::Unspecified),
            MeetingAction::RecordResolution,
        )
        .is_none()
        {
            return Err(ApiError::precondition(
                "MEETING_STATE_CONFLICT",
                format!(
                    "resolutions are recorded in a meeting in session, not one that is {}",
                    state_name(rec.body.state)
                ),
                "مصوبه فقط در جلسهٔ در حال برگزاری ثبت می‌شود.",
            ));
        }
        // The votes are those of the meeting's roster, as it started.
        let members = Self::roster_of(&txn, mname.group(), &rec.body).await?;
        let q = rules::quorum(&members, &rec.body);
        let present = |name: &str| {
            rec.body.attendance.iter().any(|a| {
                a.member == name
                    && (a.status == pb::AttendanceStatus::Present as i32
                        || a.status == pb::AttendanceStatus::Represented as i32)
            })
        };
        let mut v = Violations::new();
        let mut seen = std::collections::HashSet::new();
        for (i, member, _) in &votes {
            let voter = members.iter().find(|m| &m.name == member);
            if !voter.is_some_and(|m| m.voting && !m.vacant && present(&m.name)) {
                v.add(
                    format!("votes[{i}].member"),
                    "must be a voting member present at the meeting",
                );
            } else if !seen.insert(member.clone()) {
                v.add(format!("votes[{i}].member"), "votes twice");
            }
        }
        // The responsible member follows the resolution up after the meeting: someone
        // seated now.
        if !req.responsible_member.is_empty()
            && !store::seated(&txn, mname.group().id())
                .await?
                .iter()
                .any(|m| m.body.name == req.responsible_member)
        {
            v.add(
                "responsible_member",
                "must be a seated member of this working group",
            );
        }
        v.into_result()?;
        let t = rules::tally(
            &votes.iter().map(|(_, _, x)| *x).collect::<Vec<_>>(),
            q.voting_present,
        );
        let meeting_id = store::meeting_id(mname.group().id(), mname.number());
        let number = store::resolutions_of(&txn, &meeting_id).await?.len() as i32 + 1;
        let id = uuid::Uuid::now_v7().to_string();
        let rname = ResolutionName::new(mname.group().clone(), id.clone());
        let r = pb::Resolution {
            name: rname.to_string(),
            meeting: req.name.clone(),
            number,
            text,
            responsible_member: req.responsible_member.clone(),
            responsible_body: body,
            deadline: deadline.map(to_timestamp),
            votes: votes
                .into_iter()
                .map(|(_, member, vote)| pb::CastVote {
                    member,
                    vote: vote as i32,
                })
                .collect(),
            votes_for: t.for_,
            votes_against: t.against,
            abstentions: t.abstain,
            adopted: t.adopted,
            state: if t.adopted {
                pb::ResolutionState::Open
            } else {
                pb::ResolutionState::NotAdopted
            } as i32,
            ..Default::default()
        };
        store::insert_resolution(&txn, &id, mname.group().id(), &meeting_id, &r).await?;
        audit::append(&txn, &ctx.audit(r.name.clone())).await?;
        let rec = store::resolution(&txn, &rname).await?;
        let out = finish_resolution(rec, now_micros());
        if let Some(key) = &key {
            key.record(
                &txn,
                &pb::RecordResolutionResponse {
                    resolution: Some(out.clone()),
                },
            )
            .await?;
        }
        commit(txn).await?;
        Ok(out)
    }

    pub async fn approve_minutes(
        &self,
        ctx: &CallContext,
        req: &pb::ApproveMinutesRequest,
    ) -> Result<pb::Meeting, ApiError> {
        let discussion = normalize_text(&req.discussion, 50_000)
            .map_err(|e| ApiError::invalid("discussion", e.to_string()))?;
        let name = MeetingName::parse(&req.name, "name")?;
        self.change_meeting(
            ctx,
            &req.name,
            &req.etag,
            MeetingAction::ApproveMinutes,
            async move |txn, m, members| {
                m.discussion = discussion;
                // `members` is the roster the meeting started with.
                m.quorum = Some(rules::quorum(members, m));
                m.close_time = Some(to_timestamp(now_micros()));
                // The minutes carry the resolutions as voted; follow-up lives on in the
                // resolutions themselves.
                let id = store::meeting_id(name.group().id(), name.number());
                m.resolutions = store::resolutions_of(txn, &id)
                    .await?
                    .into_iter()
                    .map(|r| r.body)
                    .collect();
                m.state = pb::MeetingState::Closed as i32;
                let form = MinutesHashVersion::CURRENT;
                m.content_sha256 = form.sha256(m).map_err(ApiError::internal)?;
                m.minutes_hash_version = form.number();
                Ok(())
            },
        )
        .await
    }

    pub async fn verify_minutes(
        &self,
        ctx: &CallContext,
        name: &str,
    ) -> Result<pb::VerifyMinutesResponse, ApiError> {
        ctx.require(READERS)?;
        let name = MeetingName::parse(name, "name")?;
        let m = store::meeting(self.db.conn(), &name).await?.body;
        if m.state != pb::MeetingState::Closed as i32 {
            return Err(ApiError::precondition(
                "MINUTES_NOT_APPROVED",
                "the minutes of this meeting are not approved yet",
                "صورتجلسهٔ این جلسه هنوز تأیید نشده است.",
            ));
        }
        // Recomputed in the form the record names, so minutes approved in an older form
        // still verify.
        let form = MinutesHashVersion::from_number(m.minutes_hash_version).ok_or_else(|| {
            ApiError::precondition(
                "MINUTES_HASH_VERSION_UNKNOWN",
                format!(
                    "the minutes were hashed in form {}, which this release does not know",
                    m.minutes_hash_version
                ),
                "نسخهٔ درهم‌سازی این صورتجلسه برای این نسخهٔ سامانه ناشناخته است.",
            )
        })?;
        let computed = match form {
            // Over the bytes approved then, kept verbatim, while the record still says
            // what they say; empty when it does not.
            MinutesHashVersion::V1ProstEncoding => store::minutes_v1(self.db.conn(), &name)
                .await?
                .and_then(|kept| crate::canonical::verify_v1(&kept, &m))
                .unwrap_or_default(),
            // Minutes without a canonical form (a time out of its range) cannot match.
            MinutesHashVersion::V2CanonicalJson => form.sha256(&m).unwrap_or_default(),
        };
        Ok(pb::VerifyMinutesResponse {
            intact: !computed.is_empty() && computed == m.content_sha256,
            stored_sha256: m.content_sha256,
            computed_sha256: computed,
            minutes_hash_version: form.number(),
        })
    }

    pub async fn export_minutes(
        &self,
        ctx: &CallContext,
        name: &str,
    ) -> Result<pb::ExportMinutesResponse, ApiError> {
        ctx.require(READERS)?;
        let name = MeetingName::parse(name, "name")?;
        let group = store::group(self.db.conn(), name.group()).await?.body;
        let rec = store::meeting(self.db.conn(), &name).await?;
        let m = self
            .finish_meeting(self.db.conn(), name.group(), rec)
            .await?;
        // People are named and placed as the meeting's roster has them; anyone else the
        // minutes mention (a responsible member seated later) as the group's records do.
        let mut members = m.roster.clone();
        members.extend(
            store::members_ever(self.db.conn(), name.group().id())
                .await?
                .into_iter()
                .map(|r| r.body),
        );
        Ok(pb::ExportMinutesResponse {
            html: crate::minutes::render(&group, &m, &members),
            content_sha256: m.content_sha256,
            minutes_hash_version: m.minutes_hash_version,
        })
    }

    // ---------- resolutions ----------

    pub async fn get_resolution(
        &self,
        ctx: &CallContext,
        name: &str,
    ) -> Result<pb::Resolution, ApiError> {
        ctx.require(READERS)?;
        let name = ResolutionName::parse(name, "name")?;
        let rec = store::resolution(self.db.conn(), &name).await?;
        Ok(finish_resolution(rec, now_micros()))
    }

    pub async fn list_resolutions(
        &self,
        ctx: &CallContext,
        req: &pb::ListResolutionsRequest,
    ) -> Result<pb::ListResolutionsResponse, ApiError> {
        ctx.require(READERS)?;
        let gname = GroupName::parse(&req.parent, "parent")?;
        let gid = gname.id();
        let size = pagination::page_size(req.page_size, "page_size")?;
        let state = match req.state {
            0 => None,
            s if pb::ResolutionState::try_from(s).is_ok() => Some(s),
            _ => return Err(ApiError::invalid("state", "is not a known value")),
        };
        if !req.responsible_member.is_empty() {
            let who = MemberName::parse(&req.responsible_member, "responsible_member")?;
            if who.group() != &gname {
                return Err(ApiError::invalid(
                    "responsible_member",
                    format!("must be a member of {gname}"),
                ));
            }
        }
        let now = now_micros();
        let fp = pagination::fingerprint(&[
            "resolutions",
            gid,
            &format!("{state:?}{}", req.overdue_only),
            &req.responsible_member,
        ]);
        let mut w = Where::new();
        w.add("working_group_id = ?", [gid.into()]);
        if let Some(s) = state {
            w.add("state = ?", [s.into()]);
        }
        if req.overdue_only {
            w.add(
                "state IN (?, ?) AND deadline_us < ?",
                [
                    (pb::ResolutionState::Open as i32).into(),
                    (pb::ResolutionState::InProgress as i32).into(),
                    now.into(),
                ],
            );
        }
        if !req.responsible_member.is_empty() {
            w.add(
                "responsible_member = ?",
                [req.responsible_member.clone().into()],
            );
        }
        if let Some(last) = pagination::decode::<String>(&req.page_token, &fp, "page_token")? {
            w.add("id > ?", [last.into()]);
        }
        let mut rows: Vec<Record<pb::Resolution>> =
            store::resolutions(self.db.conn(), w, size + 1).await?;
        let next_page_token = pagination::next_page(&mut rows, size, &fp, |r| r.id.clone());
        Ok(pb::ListResolutionsResponse {
            resolutions: rows
                .into_iter()
                .map(|r| finish_resolution(r, now))
                .collect(),
            next_page_token,
        })
    }

    /// One change of a resolution: read, etag checked, `apply`ed, saved with its audit
    /// record.
    async fn change_resolution(
        &self,
        ctx: &CallContext,
        name: &ResolutionName,
        etag: &str,
        apply: impl FnOnce(&mut pb::Resolution) -> Result<(), ApiError>,
    ) -> Result<pb::Resolution, ApiError> {
        let sent = name.to_string();
        let txn = self.db.begin_write().await?;
        let rec = store::resolution(&txn, name).await?;
        check_etag(etag, rec.version, &sent)?;
        let mut r = rec.body;
        apply(&mut r)?;
        if !store::save_resolution(&txn, name.id(), rec.version, &r, &rec.extra).await? {
            return Err(ApiError::stale(&sent));
        }
        audit::append(&txn, &ctx.audit(r.name.clone())).await?;
        commit(txn).await?;
        // The saved row is `r` at the next version: no need to read it back.
        Ok(finish_resolution(
            Record {
                id: name.id().to_owned(),
                version: rec.version + 1,
                body: r,
                extra: rec.extra,
            },
            now_micros(),
        ))
    }

    pub async fn report_progress(
        &self,
        ctx: &CallContext,
        req: &pb::ReportResolutionProgressRequest,
    ) -> Result<pb::Resolution, ApiError> {
        ctx.require(&[Role::Admin, Role::Secretary, Role::Member])?;
        let name = ResolutionName::parse(&req.name, "name")?;
        if !(0..=100).contains(&req.progress) {
            return Err(ApiError::invalid("progress", "must be from 0 to 100"));
        }
        let note = normalize_text(&req.note, 5000)
            .map_err(|e| ApiError::invalid("note", e.to_string()))?;
        let member =
            (ctx.role() == Role::Member).then(|| ctx.principal.member.clone().unwrap_or_default());
        let reporter = ctx.principal.subject.clone();
        let progress = req.progress;
        self.change_resolution(ctx, &name, &req.etag, move |r| {
            if let Some(m) = member
                && (m.is_empty() || store::last_segment(&r.responsible_member) != m)
            {
                return Err(ApiError::PermissionDenied(
                    "a member reports progress only on resolutions assigned to them".into(),
                ));
            }
            let from = pb::ResolutionState::try_from(r.state).unwrap_or(pb::ResolutionState::Unspecified);
            let to = rules::resolution_after_progress(from, progress).ok_or_else(|| {
                ApiError::precondition(
                    "RESOLUTION_STATE_CONFLICT",
                    "progress is reported only on an adopted resolution that is open or in progress",
                    "گزارش پیشرفت فقط برای مصوبهٔ باز ثبت می‌شود.",
                )
            })?;
            r.state = to as i32;
            r.progress = progress;
            r.notes.push(pb::ProgressNote {
                time: Some(to_timestamp(now_micros())),
                progress,
                note,
                reported_by: reporter,
            });
            Ok(())
        })
        .await
    }

    pub async fn cancel_resolution(
        &self,
        ctx: &CallContext,
        req: &pb::CancelResolutionRequest,
    ) -> Result<pb::Resolution, ApiError> {
        ctx.require(MANAGERS)?;
        let name = ResolutionName::parse(&req.name, "name")?;
        let reason = normalize_text(&req.reason, 2000)
            .map_err(|e| ApiError::invalid("reason", e.to_string()))?;
        if reason.is_empty() {
            return Err(ApiError::invalid("reason", "is required"));
        }
        let reporter = ctx.principal.subject.clone();
        self.change_resolution(ctx, &name, &req.etag, move |r| {
            let from =
                pb::ResolutionState::try_from(r.state).unwrap_or(pb::ResolutionState::Unspecified);
            if !rules::resolution_cancellable(from) {
                return Err(ApiError::precondition(
                    "RESOLUTION_STATE_CONFLICT",
                    "only an open resolution can be cancelled",
                    "فقط مصوبهٔ باز لغو می‌شود.",
                ));
            }
            r.state = pb::ResolutionState::Cancelled as i32;
            r.notes.push(pb::ProgressNote {
                time: Some(to_timestamp(now_micros())),
                progress: r.progress,
                note: reason,
                reported_by: reporter,
            });
            Ok(())
        })
        .await
    }
}

pub fn finish_resolution(rec: Record<pb::Resolution>, now: i64) -> pb::Resolution {
    let mut r = rec.body;
    r.etag = rec.version.to_string();
    r.overdue =
        rules::resolution_overdue(r.state, r.deadline.as_ref().and_then(from_timestamp), now);
    r
}
