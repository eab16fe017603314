//! The use cases, one function per RPC: each reads, checks with [`crate::rules`], calls
//! the peers it needs (their answers converted where they arrive), and changes through
//! the platform's one change path (`change::open` → authorise → etag → save → commit) or
//! its one create path (`change::begin_create` → insert → commit). They take and return
//! domain types; the caller's role was checked at the edge ([`crate::api`]), once per RPC.
//! The time of day is the database's clock.

use mosharekat_calendar::{Publication, SharedCalendar};
use mosharekat_notify::Template;
use mosharekat_persian::NationalCode;
use mosharekat_platform::change::{self, Begun, Checked, Versioned};
use mosharekat_platform::ctx::CallContext;
use mosharekat_platform::db::{Db, WriteTxn};
use mosharekat_platform::error::{ApiError, Violations};
use mosharekat_platform::pagination;
use mosharekat_referral_client::ReferralPeer;
use mosharekat_registry_client::RegistryPeer;
use sea_orm::ConnectionTrait;

use crate::canonical::{self, MinutesHashVersion};
use crate::domain::*;
use crate::error::MeetingError;
use crate::names::{GroupName, MeetingName, MemberName, ResolutionName};
use crate::notices;
use crate::rules::{self, MeetingAction};
use crate::store::{self, Kept, Record, Where};

/// Everything the use cases share.
#[derive(Clone, Debug)]
pub struct Meetings {
    pub(crate) db: Db,
    pub(crate) registry: RegistryPeer,
    pub(crate) referral: ReferralPeer,
    /// The legal calendar every deadline is counted by; the registry's calendar follower
    /// updates it and calls [`Meetings::apply_publication`].
    pub(crate) calendar: SharedCalendar,
}

/// A resolution as callers see it: its etag (none for the copy kept in approved minutes)
/// and whether it is overdue now.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolutionView {
    pub resolution: Resolution,
    pub version: Option<i64>,
    pub overdue: bool,
}

impl ResolutionView {
    fn of(r: Record<Resolution>, now: i64) -> Self {
        let resolution = r.value.value;
        Self {
            overdue: rules::resolution_overdue(resolution.state, resolution.deadline, now),
            version: Some(r.version),
            resolution,
        }
    }
}

/// A meeting as callers see it: before its minutes are approved, its quorum counted now
/// and its resolutions as followed up; after, as approved.
#[derive(Debug, Clone, PartialEq)]
pub struct MeetingView {
    pub meeting: Meeting,
    pub version: i64,
    pub resolutions: Vec<ResolutionView>,
}

/// A page of a list, and the token of the next.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: String,
}

/// What an idempotent create answers: the first answer to a retried request, or the new
/// resource (`answer` the response the API gives for it, remembered for retries).
pub struct CreateRequest<'a, Req, F> {
    pub request_id: &'a str,
    /// The request, as the API received it: what a retry must repeat.
    pub request: &'a Req,
    pub answer: F,
}

/// A new working group, as validated at the edge.
#[derive(Debug, Clone)]
pub struct NewGroup {
    pub province: String,
    pub title: String,
    pub founding_time: Option<Time>,
    pub minutes_comment_days: Option<u32>,
}

/// What an update changes: the fields the mask names.
#[derive(Debug, Clone, Default)]
pub struct GroupChange {
    pub title: Option<String>,
    pub founding_time: Option<Time>,
    /// `Some(None)`: back to the default.
    pub minutes_comment_days: Option<Option<u32>>,
}

#[derive(Debug, Clone)]
pub struct NewMember {
    pub full_name: String,
    pub national_code: NationalCode,
    pub seat: Seat,
    pub position: Position,
    pub position_title: String,
    /// `institutions/{id}` for a representative, else empty.
    pub institution: String,
    pub term_start: Option<Time>,
}

#[derive(Debug, Clone)]
pub struct NewMeeting {
    pub title: String,
    pub place: String,
    pub scheduled_time: Option<Time>,
}

#[derive(Debug, Clone)]
pub struct NewResolution {
    pub text: String,
    pub responsible_member: String,
    pub responsible_body: String,
    pub deadline: Option<DeadlineAsked>,
    /// (index in the request, member, vote)
    pub votes: Vec<(usize, String, Vote)>,
    /// 1-based; 0: the meeting as a whole.
    pub agenda_item: u32,
}

/// Who a follow-up note written by the legal calendar is reported by.
pub const CALENDAR_REPORTER: &str = "تقویم قضایی";

fn not_found(kind: &'static str, name: &impl ToString) -> ApiError {
    ApiError::not_found(kind, name.to_string())
}

impl Meetings {
    fn now(&self) -> i64 {
        self.db.now_micros()
    }

    /// Begins an idempotent create, or answers a retry as the first time.
    async fn begin<'c, Req: prost::Message, Resp: prost::Message + Default>(
        &self,
        ctx: &'c CallContext,
        request_id: &str,
        request: &Req,
    ) -> Result<Result<change::Create<'c>, Resp>, ApiError> {
        Ok(
            match change::begin_create(&self.db, ctx, request_id, request).await? {
                Begun::Replay(r) => Err(r),
                Begun::Fresh(c) => Ok(*c),
            },
        )
    }

    // ---------- working groups ----------

    pub async fn create_group<Req, Resp>(
        &self,
        ctx: &CallContext,
        new: NewGroup,
        req: CreateRequest<'_, Req, impl FnOnce(&Versioned<Group>) -> Resp>,
    ) -> Result<Resp, ApiError>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        let create = match self.begin(ctx, req.request_id, req.request).await? {
            Ok(c) => c,
            Err(replay) => return Ok(replay),
        };
        let now = Time::from_micros(create.txn().now_micros());
        let g = Group {
            name: GroupName::new(uuid::Uuid::now_v7().to_string()),
            province: new.province,
            title: new.title,
            founding_time: new.founding_time.or(Some(now)),
            create_time: Some(now),
            update_time: Some(now),
            minutes_comment_days: new.minutes_comment_days,
        };
        store::insert_group(create.txn(), &g).await?;
        let name = g.name.to_string();
        let out = (req.answer)(&Versioned {
            version: 1,
            value: g,
        });
        create.commit(name, &out).await?;
        Ok(out)
    }

    pub async fn get_group(&self, name: &GroupName) -> Result<Versioned<Group>, ApiError> {
        store::group(self.db.conn(), name)
            .await?
            .map(|r| r.map(|k| k.value))
            .ok_or_else(|| not_found("working group", name))
    }

    pub async fn list_groups(
        &self,
        province_key: &str,
        size: u64,
        page_token: &str,
    ) -> Result<Page<Versioned<Group>>, ApiError> {
        let fp = pagination::fingerprint(&["working-groups", province_key]);
        let mut w = Where::new();
        if !province_key.is_empty() {
            w.add("province_key = ?", [province_key.to_owned().into()]);
        }
        if let Some(last) = pagination::decode::<String>(page_token, &fp, "page_token")? {
            w.add("id > ?", [last.into()]);
        }
        let mut rows = store::groups(self.db.conn(), w, size + 1).await?;
        let next_page_token =
            pagination::next_page(&mut rows, size, &fp, |r| r.value.name.id().to_owned());
        Ok(Page {
            items: rows.into_iter().map(|r| r.map(|k| k.value)).collect(),
            next_page_token,
        })
    }

    pub async fn update_group(
        &self,
        ctx: &CallContext,
        name: &GroupName,
        etag: &str,
        change: GroupChange,
    ) -> Result<Versioned<Group>, ApiError> {
        let checked = change::open(&self.db, ctx, &store::Groups, name)
            .await?
            .authorise(|_| true)?
            .check_etag(etag)?;
        let mut g = checked.current().clone();
        if let Some(t) = change.title {
            g.title = t;
        }
        if let Some(t) = change.founding_time {
            g.founding_time = Some(t);
        }
        if let Some(d) = change.minutes_comment_days {
            g.minutes_comment_days = d;
        }
        g.update_time = Some(Time::from_micros(checked.txn().now_micros()));
        Ok(checked.save(g).await?.commit().await?.map(|k| k.value))
    }

    // ---------- members ----------

    pub async fn seat<Req, Resp>(
        &self,
        ctx: &CallContext,
        group: &GroupName,
        new: NewMember,
        req: CreateRequest<'_, Req, impl FnOnce(&Versioned<Member>) -> Resp>,
    ) -> Result<Resp, ApiError>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        let g = self.get_group(group).await?;
        // A retry is answered before the registry is asked again.
        if let Some(r) = change::replayed(&self.db, ctx, req.request_id, req.request).await? {
            return Ok(r);
        }
        if new.seat == Seat::InstitutionRepresentative {
            let answer = self
                .registry
                .licensed(ctx, &new.institution, &g.value.province)
                .await?;
            if !answer.licensed {
                return Err(MeetingError::NotLicensed {
                    registry_reason: answer.reason,
                }
                .into());
            }
        }
        let create = match change::begin_create_replayed(&self.db, ctx, req.request_id, req.request)
            .await?
        {
            Begun::Fresh(c) => c,
            Begun::Replay(replay) => return Ok(replay),
        };
        let now = create.txn().now_micros();
        let m = Member {
            name: MemberName::new(group.clone(), uuid::Uuid::now_v7().to_string()),
            full_name: new.full_name,
            national_code: Some(new.national_code),
            seat: new.seat,
            position: new.position,
            position_title: new.position_title,
            institution: new.institution,
            term_start: Some(new.term_start.unwrap_or(Time::from_micros(now))),
            term_end: None,
            voting: rules::seat_votes(new.seat),
            vacant: false,
            vacancy_reason: String::new(),
        };
        let seated = values(store::seated(create.txn(), group).await?);
        rules::check_seat(&seated, &m).map_err(MeetingError::SeatRefusal)?;
        store::insert_member(create.txn(), &m).await?;
        let name = m.name.to_string();
        let out = (req.answer)(&Versioned {
            version: 1,
            value: m,
        });
        create.commit(name, &out).await?;
        Ok(out)
    }

    pub async fn list_members(
        &self,
        group: &GroupName,
        include_vacant: bool,
    ) -> Result<Vec<Versioned<Member>>, ApiError> {
        self.get_group(group).await?;
        Ok(store::seated(self.db.conn(), group)
            .await?
            .into_iter()
            .filter(|r| include_vacant || !r.value.vacant)
            .map(|r| r.map(|k| k.value))
            .collect())
    }

    pub async fn unseat(
        &self,
        ctx: &CallContext,
        name: &MemberName,
        etag: &str,
        reason: String,
    ) -> Result<Versioned<Member>, ApiError> {
        let checked = change::open(&self.db, ctx, &store::Members, name)
            .await?
            .authorise(|_| true)?
            .check_etag(etag)?;
        if checked.current().term_end.is_some() {
            return Err(MeetingError::MemberNotSeated.into());
        }
        let mut m = checked.current().clone();
        m.term_end = Some(Time::from_micros(checked.txn().now_micros()));
        if !reason.is_empty() {
            m.vacancy_reason = reason;
        }
        Ok(checked.save(m).await?.commit().await?.map(|k| k.value))
    }

    /// Flags an institution's representatives' seats vacant (inside the event consumer's
    /// transaction, which holds the write turn) when its licence is lost.
    pub async fn vacate_seats_of(
        txn: &WriteTxn,
        institution_id: &str,
        why: &str,
        ctx: &CallContext,
    ) -> Result<usize, ApiError> {
        let mut n = 0;
        for rec in store::representatives_of(txn, institution_id).await? {
            if rec.value.vacant {
                continue;
            }
            // The one change path, inside the consumer's transaction: at the version just
            // listed, committed with the event's cursor.
            let checked = change::open_in(txn, ctx, &store::Members, &rec.value.name)
                .await?
                .authorise(|_| true)?
                .check_etag(&rec.version.to_string())?;
            let mut m = checked.current().clone();
            m.vacant = true;
            m.vacancy_reason = why.to_owned();
            checked.save(m).await?.commit().await?;
            n += 1;
        }
        Ok(n)
    }

    // ---------- meetings ----------

    /// Whom a meeting counts: the roster fixed when it started; before it starts (or for a
    /// meeting started before rosters were kept) the members seated now.
    async fn roster_of<C: ConnectionTrait>(c: &C, m: &Meeting) -> Result<Vec<Member>, ApiError> {
        if !m.roster.is_empty() {
            return Ok(m.roster.clone());
        }
        Ok(values(store::seated(c, m.name.group()).await?))
    }

    /// The meetings of one working group as callers see them, in a bounded number of
    /// queries whatever their number: the seats now (once) and the resolutions of every
    /// meeting not yet closed (once).
    async fn views<C: ConnectionTrait>(
        &self,
        c: &C,
        group: &GroupName,
        rows: Vec<Record<Meeting>>,
    ) -> Result<Vec<MeetingView>, ApiError> {
        let now = self.now();
        let open: Vec<MeetingName> = rows
            .iter()
            .filter(|r| r.value.state != MeetingState::Closed)
            .map(|r| r.value.name.clone())
            .collect();
        let seated = if rows
            .iter()
            .any(|r| r.value.state != MeetingState::Closed && r.value.roster.is_empty())
        {
            values(store::seated(c, group).await?)
        } else {
            Vec::new()
        };
        let mut resolutions = if open.is_empty() {
            Default::default()
        } else {
            store::resolutions_of_each(c, &open).await?
        };
        Ok(rows
            .into_iter()
            .map(|r| {
                let version = r.version;
                let mut m = r.value.value;
                if m.state == MeetingState::Closed {
                    let resolutions = m
                        .resolutions
                        .iter()
                        .map(|x| ResolutionView {
                            resolution: x.clone(),
                            version: None,
                            overdue: false,
                        })
                        .collect();
                    return MeetingView {
                        meeting: m,
                        version,
                        resolutions,
                    };
                }
                let members = if m.roster.is_empty() {
                    &seated
                } else {
                    &m.roster
                };
                m.quorum = Some(rules::quorum(members, &m));
                if m.roster.is_empty() {
                    // Not started: the automatic recusals as the seats stand now (fixed
                    // with the roster at the start).
                    let auto = rules::automatic_recusals(members, &m.agenda);
                    rules::merge_recusals(&mut m.recusals, auto);
                }
                let resolutions = resolutions
                    .remove(&store::row_id(&m.name))
                    .unwrap_or_default()
                    .into_iter()
                    .map(|x| ResolutionView::of(x, now))
                    .collect();
                MeetingView {
                    meeting: m,
                    version,
                    resolutions,
                }
            })
            .collect())
    }

    async fn view<C: ConnectionTrait>(
        &self,
        c: &C,
        r: Record<Meeting>,
    ) -> Result<MeetingView, ApiError> {
        let group = r.value.name.group().clone();
        self.views(c, &group, vec![r])
            .await?
            .pop()
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("a meeting without its view")))
    }

    pub async fn schedule<Req, Resp>(
        &self,
        ctx: &CallContext,
        group: &GroupName,
        new: NewMeeting,
        req: CreateRequest<'_, Req, impl FnOnce(&MeetingView) -> Resp>,
    ) -> Result<Resp, ApiError>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        let create = match self.begin(ctx, req.request_id, req.request).await? {
            Ok(c) => c,
            Err(replay) => return Ok(replay),
        };
        store::group(create.txn(), group)
            .await?
            .ok_or_else(|| not_found("working group", group))?;
        let number = store::next_meeting_number(create.txn(), group).await?;
        let m = Meeting {
            name: MeetingName::new(group.clone(), number),
            title: new.title,
            scheduled_time: new.scheduled_time,
            place: new.place,
            state: MeetingState::Scheduled,
            state_reason: String::new(),
            agenda: Vec::new(),
            agenda_final: false,
            attendance: Vec::new(),
            deputy_chair: String::new(),
            quorum: None,
            resolutions: Vec::new(),
            discussion: String::new(),
            start_time: None,
            close_time: None,
            content_sha256: String::new(),
            roster: Vec::new(),
            minutes_hash_version: None,
            recusals: Vec::new(),
            review: None,
            signatures: Vec::new(),
        };
        store::insert_meeting(create.txn(), &m).await?;
        notices::meeting_changed(create.txn(), Template::MeetingScheduled, &m).await?;
        let name = m.name.to_string();
        let view = self
            .view(
                create.txn(),
                Versioned {
                    version: 1,
                    value: Kept::new(m),
                },
            )
            .await?;
        let out = (req.answer)(&view);
        create.commit(name, &out).await?;
        Ok(out)
    }

    async fn meeting(&self, name: &MeetingName) -> Result<Record<Meeting>, ApiError> {
        store::meeting(self.db.conn(), name)
            .await?
            .ok_or_else(|| not_found("meeting", name))
    }

    pub async fn get_meeting(&self, name: &MeetingName) -> Result<MeetingView, ApiError> {
        let r = self.meeting(name).await?;
        self.view(self.db.conn(), r).await
    }

    pub async fn list_meetings(
        &self,
        group: &GroupName,
        size: u64,
        page_token: &str,
    ) -> Result<Page<MeetingView>, ApiError> {
        let fp = pagination::fingerprint(&["meetings", group.id()]);
        let after = pagination::decode::<i32>(page_token, &fp, "page_token")?;
        let mut rows = store::meetings_page(self.db.conn(), group, after, size + 1).await?;
        let next_page_token =
            pagination::next_page(&mut rows, size, &fp, |r| r.value.name.number());
        Ok(Page {
            items: self.views(self.db.conn(), group, rows).await?,
            next_page_token,
        })
    }

    /// Begins a change of a meeting: loaded in the write transaction, its etag checked,
    /// `action` checked against its life cycle. Gives the state it leads to and whom the
    /// meeting counts.
    async fn open_meeting<'a>(
        &self,
        ctx: &'a CallContext,
        name: &'a MeetingName,
        etag: &str,
        action: MeetingAction,
    ) -> Result<(Checked<'a, store::Meetings>, MeetingState, Vec<Member>), ApiError> {
        let checked = change::open(&self.db, ctx, &store::Meetings, name)
            .await?
            .authorise(|_| true)?
            .check_etag(etag)?;
        let to = rules::transition(checked.current().state, action)?;
        let members = Self::roster_of(checked.txn(), checked.current()).await?;
        Ok((checked, to, members))
    }

    /// Ends a change of a meeting: saved in its new state, answered as callers see it.
    async fn save_meeting(
        &self,
        checked: Checked<'_, store::Meetings>,
        next: Kept<Meeting>,
        to: MeetingState,
    ) -> Result<MeetingView, ApiError> {
        self.save_meeting_telling(checked, next, to, None).await
    }

    /// [`Self::save_meeting`], and `notice` told to every member in the same transaction.
    async fn save_meeting_telling(
        &self,
        checked: Checked<'_, store::Meetings>,
        mut next: Kept<Meeting>,
        to: MeetingState,
        notice: Option<Template>,
    ) -> Result<MeetingView, ApiError> {
        next.state = to;
        let saved = checked.save(next).await?;
        if let Some(t) = notice {
            notices::meeting_changed(saved.txn(), t, &saved.saved().value).await?;
        }
        // The view's other parts (resolutions, seats) are read in the same transaction;
        // the meeting itself is what was saved, not read back.
        let view = self.view(saved.txn(), saved.saved().clone()).await?;
        saved.commit().await?;
        Ok(view)
    }

    pub async fn reschedule(
        &self,
        ctx: &CallContext,
        name: &MeetingName,
        etag: &str,
        at: Time,
        place: Option<String>,
    ) -> Result<MeetingView, ApiError> {
        let (checked, to, _) = self
            .open_meeting(ctx, name, etag, MeetingAction::Reschedule)
            .await?;
        let mut m = checked.current().clone();
        m.scheduled_time = Some(at);
        if let Some(p) = place {
            m.place = p;
        }
        m.state_reason.clear();
        self.save_meeting_telling(checked, m, to, Some(Template::MeetingMoved))
            .await
    }

    /// Postpones or cancels, saying why.
    pub async fn set_state_reason(
        &self,
        ctx: &CallContext,
        name: &MeetingName,
        etag: &str,
        why: String,
        action: MeetingAction,
    ) -> Result<MeetingView, ApiError> {
        let (checked, to, _) = self.open_meeting(ctx, name, etag, action).await?;
        let mut m = checked.current().clone();
        m.state_reason = why;
        let notice = match to {
            MeetingState::Postponed => Some(Template::MeetingPostponed),
            MeetingState::Cancelled => Some(Template::MeetingCancelled),
            _ => None,
        };
        self.save_meeting_telling(checked, m, to, notice).await
    }

    /// Checks each agenda pointer with the service that owns it (field `items[i].subject`)
    /// and records whose it is (`subject_institution`): the institution itself, or the
    /// institution the referral service names for the filing or referral.
    async fn resolve_subjects(
        &self,
        ctx: &CallContext,
        items: &mut [AgendaItem],
    ) -> Result<(), ApiError> {
        let mut missing = Violations::new();
        for (i, it) in items.iter_mut().enumerate() {
            if it.subject.is_empty() {
                continue;
            }
            let owner = if it.subject.starts_with("institutions/") {
                self.registry
                    .institution_exists(ctx, &it.subject)
                    .await?
                    .then(|| it.subject.clone())
            } else {
                self.referral.case_institution(ctx, &it.subject).await?
            };
            match owner {
                Some(institution) => it.subject_institution = institution,
                None => missing.add(
                    format!("items[{i}].subject"),
                    format!("{} does not exist", it.subject),
                ),
            }
        }
        missing.into_result()
    }

    pub async fn set_agenda(
        &self,
        ctx: &CallContext,
        name: &MeetingName,
        etag: &str,
        mut items: Vec<AgendaItem>,
    ) -> Result<MeetingView, ApiError> {
        // The pointers are checked with their services before the write transaction.
        self.resolve_subjects(ctx, &mut items).await?;
        let (checked, to, _) = self
            .open_meeting(ctx, name, etag, MeetingAction::EditAgenda)
            .await?;
        if checked.current().agenda_final {
            return Err(MeetingError::AgendaFinal.into());
        }
        let mut m = checked.current().clone();
        m.agenda = items;
        self.save_meeting(checked, m, to).await
    }

    /// The standing report's figures: the referral service's statistics for the group's
    /// province over the year before the meeting.
    async fn standing_report(
        &self,
        ctx: &CallContext,
        province: &str,
        at: i64,
    ) -> Result<Vec<Figure>, ApiError> {
        let s = self
            .referral
            .statistics(
                ctx,
                mosharekat_api::referral::v1::GetStatisticsRequest {
                    province: province.to_owned(),
                    start_time: Some(mosharekat_platform::db::to_timestamp(
                        at - 365 * 86_400_000_000,
                    )),
                    end_time: Some(mosharekat_platform::db::to_timestamp(at)),
                },
            )
            .await?;
        let f = |label: &str, value: String| Figure {
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

    pub async fn finalize_agenda(
        &self,
        ctx: &CallContext,
        name: &MeetingName,
        etag: &str,
    ) -> Result<MeetingView, ApiError> {
        let current = self.meeting(name).await?;
        if current.value.agenda_final {
            return Err(MeetingError::AgendaAlreadyFinal.into());
        }
        let group = self.get_group(name.group()).await?;
        let figures = if current.value.agenda.iter().any(|i| i.standing_report) {
            let at = current
                .value
                .scheduled_time
                .map(Time::micros)
                .unwrap_or_else(|| self.now());
            Some(self.standing_report(ctx, &group.value.province, at).await?)
        } else {
            None
        };
        // Pinned to the meeting as read, so the figures belong to that agenda.
        let etag = if etag.is_empty() {
            current.etag()
        } else {
            etag.to_owned()
        };
        if etag != current.etag() {
            return Err(ApiError::stale(&name.to_string()));
        }
        let (checked, to, _) = self
            .open_meeting(ctx, name, &etag, MeetingAction::EditAgenda)
            .await?;
        let mut m = checked.current().clone();
        if let Some(f) = figures {
            for item in m.agenda.iter_mut().filter(|i| i.standing_report) {
                item.figures = f.clone();
            }
        }
        m.agenda_final = true;
        self.save_meeting(checked, m, to).await
    }

    pub async fn record_attendance(
        &self,
        ctx: &CallContext,
        name: &MeetingName,
        etag: &str,
        entries: Vec<Attendance>,
        deputy: String,
    ) -> Result<MeetingView, ApiError> {
        let (checked, to, members) = self
            .open_meeting(ctx, name, etag, MeetingAction::RecordAttendance)
            .await?;
        let mut v = Violations::new();
        for (i, a) in entries.iter().enumerate() {
            if !members.iter().any(|x| x.name.to_string() == a.member) {
                v.add(
                    format!("attendance[{i}].member"),
                    "must be a seated member of this working group",
                );
            }
        }
        if !deputy.is_empty()
            && !members
                .iter()
                .any(|x| x.name.to_string() == deputy && x.voting && x.seat != Seat::Chair)
        {
            v.add(
                "deputy_chair",
                "must be a seated voting member other than the chair",
            );
        }
        v.into_result()?;
        let mut m = checked.current().clone();
        for a in entries {
            m.attendance.retain(|x| x.member != a.member);
            m.attendance.push(a);
        }
        if !deputy.is_empty() {
            m.deputy_chair = deputy;
        }
        self.save_meeting(checked, m, to).await
    }

    pub async fn start(
        &self,
        ctx: &CallContext,
        name: &MeetingName,
        etag: &str,
    ) -> Result<MeetingView, ApiError> {
        let (checked, to, members) = self
            .open_meeting(ctx, name, etag, MeetingAction::Start)
            .await?;
        let q = rules::require_quorum(&members, checked.current())?;
        let mut m = checked.current().clone();
        // The roster is fixed now: a seat falling vacant later changes later meetings, not
        // this one's attendance, quorum, votes or minutes.
        m.roster = rules::roster_snapshot(&members);
        // Who is recused for which item is fixed with the roster.
        let auto = rules::automatic_recusals(&m.roster, &m.agenda);
        rules::merge_recusals(&mut m.recusals, auto);
        m.quorum = Some(q);
        m.start_time = Some(Time::from_micros(checked.txn().now_micros()));
        self.save_meeting(checked, m, to).await
    }

    pub async fn record_resolution<Req, Resp>(
        &self,
        ctx: &CallContext,
        meeting: &MeetingName,
        new: NewResolution,
        req: CreateRequest<'_, Req, impl FnOnce(&ResolutionView) -> Resp>,
    ) -> Result<Resp, ApiError>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        let create = match self.begin(ctx, req.request_id, req.request).await? {
            Ok(c) => c,
            Err(replay) => return Ok(replay),
        };
        let txn = create.txn();
        let m = store::meeting(txn, meeting)
            .await?
            .ok_or_else(|| not_found("meeting", meeting))?
            .value
            .value;
        rules::transition(m.state, MeetingAction::RecordResolution)?;
        if m.review.is_some() {
            return Err(MeetingError::MinutesUnderReview.into());
        }
        let item = new.agenda_item;
        if item as usize > m.agenda.len() {
            return Err(ApiError::invalid(
                "agenda_item",
                format!(
                    "must be 0 (the meeting as a whole) or an item of the agenda, 1 to {}",
                    m.agenda.len()
                ),
            ));
        }
        // The votes are those of the meeting's roster, as it started, counted as the
        // quorum counts them; for an item, without the members recused for it.
        let members = Self::roster_of(txn, &m).await?;
        let recused = rules::recused_for(&m, item);
        let present: Vec<String> = rules::present_voters(&members, &m)
            .map(|x| x.name.to_string())
            .collect();
        let voters: Vec<String> = present
            .iter()
            .filter(|x| !recused.contains(x))
            .cloned()
            .collect();
        let mut v = Violations::new();
        let mut seen = std::collections::HashSet::new();
        for (i, member, _) in &new.votes {
            if recused.contains(member) && present.contains(member) {
                return Err(MeetingError::RecusedVote {
                    member: member.clone(),
                    item,
                }
                .into());
            }
            if !voters.contains(member) {
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
        if !new.responsible_member.is_empty()
            && !store::seated(txn, meeting.group())
                .await?
                .iter()
                .any(|x| x.value.name.to_string() == new.responsible_member)
        {
            v.add(
                "responsible_member",
                "must be a seated member of this working group",
            );
        }
        v.into_result()?;
        let q = rules::item_quorum(&members, &m, item);
        if item > 0 && !q.met {
            return Err(MeetingError::NoItemQuorum {
                item,
                voting_present: q.voting_present,
                required: q.required,
                explanation: q.explanation,
            }
            .into());
        }
        let legal_deadline = match new.deadline {
            Some(asked) => Some(self.resolution_deadline(txn, &m, asked).await?),
            None => None,
        };
        let t = rules::tally(
            &new.votes.iter().map(|(_, _, x)| *x).collect::<Vec<_>>(),
            voters.len() as i32,
        );
        let number = store::resolutions_of(txn, meeting).await?.len() as i32 + 1;
        let r = Resolution {
            name: ResolutionName::new(meeting.group().clone(), uuid::Uuid::now_v7().to_string()),
            meeting: meeting.to_string(),
            number,
            text: new.text,
            responsible_member: new.responsible_member,
            responsible_body: new.responsible_body,
            deadline: legal_deadline
                .as_ref()
                .map(|d| Time::from_chrono(d.ends_at)),
            legal_deadline,
            votes: new
                .votes
                .into_iter()
                .map(|(_, member, vote)| CastVote { member, vote })
                .collect(),
            votes_for: t.for_,
            votes_against: t.against,
            abstentions: t.abstain,
            adopted: t.adopted,
            state: if t.adopted {
                ResolutionState::Open
            } else {
                ResolutionState::NotAdopted
            },
            progress: 0,
            notes: Vec::new(),
            agenda_item: item,
            extract_send_time: None,
        };
        store::insert_resolution(txn, meeting, &r).await?;
        notices::resolution_assigned(txn, &r).await?;
        let name = r.name.to_string();
        let now = txn.now_micros();
        let out = (req.answer)(&ResolutionView::of(
            Versioned {
                version: 1,
                value: Kept::new(r),
            },
            now,
        ));
        create.commit(name, &out).await?;
        Ok(out)
    }

    /// The chair's approval (through the secretary's hand, as before): the draft, once
    /// opened for comment, must have had its window closed. `discussion` empty keeps the
    /// draft's. The resolutions are copied into the minutes, the hash taken, the members
    /// told, those present asked to sign, and each adopted resolution's extract sent.
    pub async fn approve_minutes(
        &self,
        ctx: &CallContext,
        name: &MeetingName,
        etag: &str,
        chair: Option<&str>,
        discussion: String,
    ) -> Result<MeetingView, ApiError> {
        let (checked, to, members) = self
            .open_meeting(ctx, name, etag, MeetingAction::ApproveMinutes)
            .await?;
        if let Some(member) = chair {
            let member = MemberName::new(name.group().clone(), member.to_owned());
            if !members
                .iter()
                .any(|m| m.name == member && m.seat == Seat::Chair && !m.vacant)
            {
                return Err(ApiError::PermissionDenied(
                    "only the chair of the meeting, or the secretariat for them, approves its minutes"
                        .into(),
                ));
            }
        }
        let mut m = checked.current().clone();
        match &m.review {
            Some(r) if r.state == ReviewState::Open => {
                return Err(MeetingError::ReviewStillOpen.into());
            }
            Some(r) if discussion.is_empty() => m.discussion = r.draft_discussion.clone(),
            _ => m.discussion = discussion,
        }
        // `members` is the roster the meeting started with.
        m.quorum = Some(rules::quorum(&members, &m));
        let now = checked.txn().now_micros();
        m.close_time = Some(Time::from_micros(now));
        // The resolutions' extracts go out with the approval.
        let mut sent = Vec::new();
        for rec in store::resolutions_of(checked.txn(), name).await? {
            if !rec.value.adopted || rec.value.extract_send_time.is_some() {
                continue;
            }
            let c = change::open_in(checked.txn(), ctx, &store::Resolutions, &rec.value.name)
                .await?
                .authorise(|_| true)?
                .check_etag(&rec.version.to_string())?;
            let mut r = c.current().clone();
            r.extract_send_time = Some(Time::from_micros(now));
            let saved = c.save(r).await?;
            notices::extract_sent(saved.txn(), &saved.saved().value.value).await?;
            saved.commit().await?;
            sent.push(rec.value.name.clone());
        }
        // The minutes carry the resolutions as voted; follow-up lives on in the
        // resolutions themselves.
        m.resolutions = values(store::resolutions_of(checked.txn(), name).await?);
        m.state = to;
        m.content_sha256 = canonical::current_sha256(&m).map_err(ApiError::internal)?;
        m.minutes_hash_version = Some(MinutesHashVersion::CURRENT.number());
        notices::signatures_requested(checked.txn(), &m, &members).await?;
        self.save_meeting_telling(checked, m, to, Some(Template::MinutesApproved))
            .await
    }

    /// A conflict of interest declared on agenda item `item` (1-based) for `member`, with
    /// its reason: that member is recused for the item. Only on a final agenda, before the
    /// draft minutes are opened for comment, and before the member voted on the item.
    pub async fn declare_conflict(
        &self,
        ctx: &CallContext,
        name: &MeetingName,
        etag: &str,
        item: u32,
        member: String,
        reason: String,
    ) -> Result<MeetingView, ApiError> {
        let (checked, to, members) = self
            .open_meeting(ctx, name, etag, MeetingAction::DeclareConflict)
            .await?;
        let current = checked.current();
        if !current.agenda_final && current.state != MeetingState::InSession {
            return Err(MeetingError::AgendaNotFinal.into());
        }
        if current.review.is_some() {
            return Err(MeetingError::MinutesUnderReview.into());
        }
        if item == 0 || item as usize > current.agenda.len() {
            return Err(ApiError::invalid(
                "agenda_item",
                format!(
                    "must be an item of the agenda, 1 to {}",
                    current.agenda.len()
                ),
            ));
        }
        if !members.iter().any(|x| x.name.to_string() == member) {
            return Err(ApiError::invalid(
                "member",
                "must be a seated member of this working group",
            ));
        }
        let mut recusals = current.recusals.clone();
        if current.roster.is_empty() {
            // Not started: the automatic ones count already.
            rules::merge_recusals(
                &mut recusals,
                rules::automatic_recusals(&members, &current.agenda),
            );
        }
        if recusals
            .iter()
            .any(|r| r.agenda_item == item && r.member == member)
        {
            return Err(MeetingError::AlreadyRecused.into());
        }
        let voted = store::resolutions_of(checked.txn(), name)
            .await?
            .iter()
            .any(|r| {
                r.value.agenda_item == item && r.value.votes.iter().any(|v| v.member == member)
            });
        if voted {
            return Err(MeetingError::ConflictAfterVote.into());
        }
        let mut m = current.clone();
        m.recusals.push(Recusal {
            agenda_item: item,
            member,
            automatic: false,
            reason,
            declare_time: Some(Time::from_micros(checked.txn().now_micros())),
        });
        self.save_meeting(checked, m, to).await
    }

    /// The secretary opens the draft minutes of a meeting in session for comment by the
    /// members who attended, until the end of the group's window (counted on the legal
    /// calendar from today), and tells them.
    pub async fn open_review(
        &self,
        ctx: &CallContext,
        name: &MeetingName,
        etag: &str,
        discussion: String,
    ) -> Result<MeetingView, ApiError> {
        let (checked, to, members) = self
            .open_meeting(ctx, name, etag, MeetingAction::OpenReview)
            .await?;
        if checked.current().review.is_some() {
            return Err(MeetingError::ReviewAlreadyOpened.into());
        }
        let group = store::group(checked.txn(), name.group())
            .await?
            .ok_or_else(|| not_found("working group", name.group()))?
            .value
            .value;
        let province = mosharekat_calendar::Province::new(&group.province).map_err(|e| {
            MeetingError::Deadline {
                field: "name",
                why: format!("the working group's province cannot be used: {e}"),
            }
        })?;
        let now = checked.txn().clock().now();
        let days = group.comment_days();
        let window = self
            .calendar
            .read(|cal| cal.deadline(now, mosharekat_calendar::Period::Days(days), &province))
            .map_err(|e| MeetingError::Deadline {
                field: "name",
                why: e.to_string(),
            })?;
        let mut m = checked.current().clone();
        m.review = Some(MinutesReview {
            state: ReviewState::Open,
            open_time: Some(Time::from_chrono(now)),
            window,
            close_time: None,
            comments: Vec::new(),
            draft_discussion: discussion,
        });
        m.state = to;
        let saved = checked.save(m).await?;
        notices::review_opened(saved.txn(), &saved.saved().value, &members).await?;
        let view = self.view(saved.txn(), saved.saved().clone()).await?;
        saved.commit().await?;
        Ok(view)
    }

    /// A comment on the draft minutes by `member` (a member id), who attended, while the
    /// window is open.
    pub async fn comment(
        &self,
        ctx: &CallContext,
        name: &MeetingName,
        etag: &str,
        member: &str,
        text: String,
    ) -> Result<MeetingView, ApiError> {
        let (checked, to, _) = self
            .open_meeting(ctx, name, etag, MeetingAction::Comment)
            .await?;
        let member = MemberName::new(name.group().clone(), member.to_owned()).to_string();
        let current = checked.current();
        let Some(review) = current
            .review
            .as_ref()
            .filter(|r| r.state == ReviewState::Open)
        else {
            return Err(MeetingError::ReviewNotOpen.into());
        };
        if review.window.is_passed(checked.txn().clock().now()) {
            return Err(MeetingError::CommentWindowPassed.into());
        }
        if !rules::attended(current, &member) {
            return Err(ApiError::PermissionDenied(
                "only a member who attended the meeting comments on its minutes".into(),
            ));
        }
        let mut m = current.clone();
        if let Some(r) = m.review.as_mut() {
            r.comments.push(MinutesComment {
                member,
                text,
                create_time: Some(Time::from_micros(checked.txn().now_micros())),
            });
        }
        self.save_meeting(checked, m, to).await
    }

    /// The secretary closes the comment window: the chair may approve.
    pub async fn close_review(
        &self,
        ctx: &CallContext,
        name: &MeetingName,
        etag: &str,
    ) -> Result<MeetingView, ApiError> {
        let (checked, to, _) = self
            .open_meeting(ctx, name, etag, MeetingAction::CloseReview)
            .await?;
        let mut m = checked.current().clone();
        match m.review.as_mut() {
            Some(r) if r.state == ReviewState::Open => {
                r.state = ReviewState::Closed;
                r.close_time = Some(Time::from_micros(checked.txn().now_micros()));
            }
            _ => return Err(MeetingError::ReviewNotOpen.into()),
        }
        notices::review_closed(checked.txn(), &m).await?;
        self.save_meeting(checked, m, to).await
    }

    /// `member` (a member id), present at the meeting, signs its approved minutes:
    /// `sha256` must be the hash they carry.
    pub async fn sign(
        &self,
        ctx: &CallContext,
        name: &MeetingName,
        etag: &str,
        member: &str,
        sha256: &str,
    ) -> Result<MeetingView, ApiError> {
        let (checked, to, _) = self
            .open_meeting(ctx, name, etag, MeetingAction::Sign)
            .await?;
        let member = MemberName::new(name.group().clone(), member.to_owned()).to_string();
        let current = checked.current();
        if !rules::attended(current, &member) {
            return Err(ApiError::PermissionDenied(
                "only a member present at the meeting signs its minutes".into(),
            ));
        }
        if current.signatures.iter().any(|x| x.member == member) {
            return Err(MeetingError::AlreadySigned.into());
        }
        if !sha256.eq_ignore_ascii_case(&current.content_sha256) {
            return Err(MeetingError::SignedHashMismatch.into());
        }
        let mut m = current.clone();
        m.signatures.push(Signature {
            member,
            sign_time: Some(Time::from_micros(checked.txn().now_micros())),
            content_sha256: current.content_sha256.clone(),
            minutes_hash_version: current.minutes_hash_version.unwrap_or(0),
        });
        self.save_meeting(checked, m, to).await
    }

    /// What a resolution's extract shows: the group, the resolution, its meeting as
    /// approved, and everyone it may name. Of an adopted resolution whose minutes are
    /// approved.
    pub async fn export_extract(
        &self,
        name: &ResolutionName,
    ) -> Result<(Group, Resolution, MeetingView, Vec<Member>), ApiError> {
        let r = store::resolution(self.db.conn(), name)
            .await?
            .ok_or_else(|| not_found("resolution", name))?
            .value
            .value;
        if !r.adopted {
            return Err(MeetingError::ResolutionNotAdopted.into());
        }
        let meeting = MeetingName::parse(&r.meeting, "name")?;
        let (group, view, members) = self.export_minutes(&meeting).await?;
        if view.meeting.state != MeetingState::Closed {
            return Err(MeetingError::MinutesNotApproved.into());
        }
        Ok((group, r, view, members))
    }

    /// The stored hash, the hash recomputed in the form the record names, and that form.
    pub async fn verify_minutes(
        &self,
        name: &MeetingName,
    ) -> Result<(String, String, MinutesHashVersion), ApiError> {
        let m = self.meeting(name).await?.value.value;
        if m.state != MeetingState::Closed {
            return Err(MeetingError::MinutesNotApproved.into());
        }
        // Recomputed in the form the record names, so minutes approved in an older form
        // still verify.
        let number = m.minutes_hash_version.unwrap_or(0);
        let form = MinutesHashVersion::from_number(number)
            .ok_or(MeetingError::MinutesHashVersionUnknown(number))?;
        let kept = match form {
            MinutesHashVersion::V1ProstEncoding => store::minutes_v1(self.db.conn(), name).await?,
            MinutesHashVersion::V2CanonicalJson | MinutesHashVersion::V3WithRecusals => None,
        };
        let computed = canonical::recompute(form, &m, kept.as_deref());
        Ok((m.content_sha256, computed, form))
    }

    /// What the printed minutes show: the group, the meeting, and everyone they may name
    /// (the roster as the meeting had it, then the group's records for anyone seated
    /// later).
    pub async fn export_minutes(
        &self,
        name: &MeetingName,
    ) -> Result<(Group, MeetingView, Vec<Member>), ApiError> {
        let group = self.get_group(name.group()).await?.value;
        let view = self.get_meeting(name).await?;
        let mut members = view.meeting.roster.clone();
        members.extend(values(
            store::members_ever(self.db.conn(), name.group()).await?,
        ));
        Ok((group, view, members))
    }

    // ---------- deadlines ----------

    /// A resolution's deadline, counted from the meeting's day (the day it started; or
    /// today, for a meeting started before start times were kept) in its group's province.
    async fn resolution_deadline(
        &self,
        txn: &WriteTxn,
        m: &Meeting,
        asked: DeadlineAsked,
    ) -> Result<mosharekat_calendar::Deadline, ApiError> {
        let field = match asked {
            DeadlineAsked::Date(_) => "deadline",
            DeadlineAsked::Period(mosharekat_calendar::Period::Months(_)) => "deadline_months",
            DeadlineAsked::Period(_) => "deadline_days",
        };
        let group = store::group(txn, m.name.group())
            .await?
            .ok_or_else(|| not_found("working group", m.name.group()))?;
        // A group created without a province has no closed days to count by: the
        // deadline cannot be computed, which is the caller's to know (not INTERNAL).
        let province = mosharekat_calendar::Province::new(&group.value.province).map_err(|e| {
            MeetingError::Deadline {
                field,
                why: format!("the working group's province cannot be used: {e}"),
            }
        })?;
        let act_at = m
            .start_time
            .and_then(Time::chrono)
            .unwrap_or_else(|| txn.clock().now());
        Ok(self
            .calendar
            .read(|cal| rules::resolution_deadline(cal, act_at, &province, asked, field))?)
    }

    /// A holiday or closure published after deadlines were set (the registry's calendar
    /// follower calls this): the calendar is given it if it does not hold it yet, and
    /// every open or in-progress resolution whose deadline's last day it now closes is
    /// moved to the next open day, with a follow-up note saying why, its responsible
    /// member told and its reminders moved; all in one transaction. A deadline already
    /// moved past it is not in it any more, so a second call changes nothing. Resolutions
    /// recorded before deadlines went through the calendar keep their deadline. Returns
    /// the resolutions moved.
    pub async fn apply_publication(
        &self,
        publication: &Publication,
    ) -> Result<Vec<ResolutionName>, ApiError> {
        self.calendar
            .update(|cal| -> Result<(), mosharekat_calendar::CalendarError> {
                if holds(cal, publication) {
                    return Ok(());
                }
                match publication {
                    Publication::Holiday(h) => {
                        cal.add_holiday(h.clone());
                        Ok(())
                    }
                    Publication::Closure(c) => cal.add_closure(c.clone()),
                }
            })
            .map_err(|e| ApiError::invalid("publication", e.to_string()))?;
        let ctx = CallContext::system("meeting/calendar");
        let txn = self.db.begin_write().await?;
        let (from, to) = span(publication);
        let open: Vec<(ResolutionName, mosharekat_calendar::Deadline)> =
            store::open_resolutions_due_between(&txn, from, to)
                .await?
                .into_iter()
                .filter_map(|r| {
                    let r = r.value.value;
                    r.legal_deadline.map(|d| (r.name, d))
                })
                .collect();
        let moved = self
            .calendar
            .read(|cal| cal.moved_by(publication, open.iter().map(|(k, d)| (k.clone(), d))))
            .map_err(|e| ApiError::invalid("publication", e.to_string()))?;
        let now = txn.now_micros();
        let mut names = Vec::new();
        for mv in moved {
            let checked = change::open_in(&txn, &ctx, &store::Resolutions, &mv.key)
                .await?
                .authorise(|_| true)?
                .check_etag("")?;
            let mut r = checked.current().clone();
            let why = mv
                .after
                .rule
                .late_moves
                .last()
                .map(|m| m.explain_persian())
                .unwrap_or_default();
            r.deadline = Some(Time::from_chrono(mv.after.ends_at));
            r.legal_deadline = Some(mv.after);
            let progress = r.progress;
            r.notes.push(ProgressNote {
                time: Some(Time::from_micros(now)),
                progress,
                note: why,
                reported_by: CALENDAR_REPORTER.into(),
            });
            let saved = checked.save(r).await?;
            notices::deadline_moved(saved.txn(), &saved.saved().value.value).await?;
            saved.commit().await?;
            names.push(mv.key);
        }
        // The minutes' comment windows ending on those days move the same way, their
        // attendees told and their reminders moved.
        let reviews: Vec<(MeetingName, mosharekat_calendar::Deadline)> =
            store::open_reviews_due_between(&txn, from, to)
                .await?
                .into_iter()
                .filter_map(|r| {
                    let m = r.value.value;
                    m.review.map(|v| (m.name, v.window))
                })
                .collect();
        let moved = self
            .calendar
            .read(|cal| cal.moved_by(publication, reviews.iter().map(|(k, d)| (k.clone(), d))))
            .map_err(|e| ApiError::invalid("publication", e.to_string()))?;
        for mv in moved {
            let checked = change::open_in(&txn, &ctx, &store::Meetings, &mv.key)
                .await?
                .authorise(|_| true)?
                .check_etag("")?;
            let mut m = checked.current().clone();
            if let Some(r) = m.review.as_mut() {
                r.window = mv.after;
            }
            let roster = Self::roster_of(&txn, &m).await?;
            let saved = checked.save(m).await?;
            notices::review_window_moved(saved.txn(), &saved.saved().value, &roster).await?;
            saved.commit().await?;
        }
        mosharekat_platform::db::commit(txn).await?;
        if !names.is_empty() {
            tracing::info!(
                moved = names.len(),
                "resolution deadlines moved by a late publication"
            );
        }
        Ok(names)
    }

    // ---------- resolutions ----------

    pub async fn get_resolution(&self, name: &ResolutionName) -> Result<ResolutionView, ApiError> {
        let r = store::resolution(self.db.conn(), name)
            .await?
            .ok_or_else(|| not_found("resolution", name))?;
        Ok(ResolutionView::of(r, self.now()))
    }

    pub async fn list_resolutions(
        &self,
        group: &GroupName,
        filter: ResolutionFilter,
        size: u64,
        page_token: &str,
    ) -> Result<Page<ResolutionView>, ApiError> {
        let ResolutionFilter {
            state,
            overdue_only,
            due_within_days,
            responsible_member,
        } = filter;
        let responsible_member = responsible_member.as_str();
        let gid = group.id();
        let now = self.now();
        let fp = pagination::fingerprint(&[
            "resolutions",
            gid,
            &format!(
                "{:?}{}{:?}",
                state.map(store::state_code),
                overdue_only,
                due_within_days
            ),
            responsible_member,
        ]);
        let mut w = Where::new();
        w.add("working_group_id = ?", [gid.into()]);
        if let Some(s) = state {
            w.add("state = ?", [store::state_code(s).into()]);
        }
        if overdue_only {
            w.add(
                "state IN (?, ?) AND deadline_us < ?",
                [
                    store::state_code(ResolutionState::Open).into(),
                    store::state_code(ResolutionState::InProgress).into(),
                    now.into(),
                ],
            );
        }
        if let Some(days) = due_within_days {
            // Not passed, and ending by the end of the day `days` after today in Tehran
            // (a deadline ends at the end of its last day).
            let today = mosharekat_calendar::SolarDate::from_instant(self.db.clock().now())
                .map_err(ApiError::internal)?;
            let until = today.add_days(i64::from(days)).end_instant();
            w.add(
                "state IN (?, ?) AND deadline_us >= ? AND deadline_us <= ?",
                [
                    store::state_code(ResolutionState::Open).into(),
                    store::state_code(ResolutionState::InProgress).into(),
                    now.into(),
                    until.timestamp_micros().into(),
                ],
            );
        }
        if !responsible_member.is_empty() {
            w.add("responsible_member = ?", [responsible_member.into()]);
        }
        if let Some(last) = pagination::decode::<String>(page_token, &fp, "page_token")? {
            w.add("id > ?", [last.into()]);
        }
        let mut rows = store::resolutions(self.db.conn(), w, size + 1).await?;
        let next_page_token =
            pagination::next_page(&mut rows, size, &fp, |r| r.value.name.id().to_owned());
        Ok(Page {
            items: rows
                .into_iter()
                .map(|r| ResolutionView::of(r, now))
                .collect(),
            next_page_token,
        })
    }

    /// One change of a resolution through the change path; `apply` turns the resolution
    /// as stored into the next (given the transaction's time).
    async fn change_resolution(
        &self,
        ctx: &CallContext,
        name: &ResolutionName,
        etag: &str,
        apply: impl FnOnce(&mut Resolution, i64) -> Result<(), ApiError>,
    ) -> Result<ResolutionView, ApiError> {
        let checked = change::open(&self.db, ctx, &store::Resolutions, name)
            .await?
            .authorise(|_| true)?
            .check_etag(etag)?;
        let now = checked.txn().now_micros();
        let mut r = checked.current().clone();
        apply(&mut r, now)?;
        let saved = checked.save(r).await?;
        notices::resolution_followed_up(
            saved.txn(),
            &saved.before().value,
            &saved.saved().value.value,
        )
        .await?;
        let saved = saved.commit().await?;
        Ok(ResolutionView::of(saved, now))
    }

    /// `member`: for a caller who is a member (not staff), their member id; they report
    /// only on resolutions assigned to them.
    pub async fn report_progress(
        &self,
        ctx: &CallContext,
        name: &ResolutionName,
        etag: &str,
        member: Option<String>,
        progress: i32,
        note: String,
    ) -> Result<ResolutionView, ApiError> {
        let reporter = ctx.principal.subject.clone();
        self.change_resolution(ctx, name, etag, move |r, now| {
            if let Some(m) = member
                && (m.is_empty() || store::last_segment(&r.responsible_member) != m)
            {
                return Err(ApiError::PermissionDenied(
                    "a member reports progress only on resolutions assigned to them".into(),
                ));
            }
            r.state = rules::resolution_after_progress(r.state, progress)
                .ok_or(MeetingError::ProgressRefused)?;
            r.progress = progress;
            r.notes.push(ProgressNote {
                time: Some(Time::from_micros(now)),
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
        name: &ResolutionName,
        etag: &str,
        reason: String,
    ) -> Result<ResolutionView, ApiError> {
        let reporter = ctx.principal.subject.clone();
        self.change_resolution(ctx, name, etag, move |r, now| {
            if !rules::resolution_cancellable(r.state) {
                return Err(MeetingError::CancelRefused.into());
            }
            r.state = ResolutionState::Cancelled;
            r.notes.push(ProgressNote {
                time: Some(Time::from_micros(now)),
                progress: r.progress,
                note: reason,
                reported_by: reporter,
            });
            Ok(())
        })
        .await
    }
}

/// What a list of resolutions is filtered on.
#[derive(Debug, Clone, Default)]
pub struct ResolutionFilter {
    pub state: Option<ResolutionState>,
    /// Open or in progress, and passed.
    pub overdue_only: bool,
    /// Open or in progress, not passed, and ending within this many days of today.
    pub due_within_days: Option<u32>,
    pub responsible_member: String,
}

/// The first and last instant of the days a publication closes.
fn span(p: &Publication) -> (i64, i64) {
    let (first, last) = match p {
        Publication::Holiday(h) => (h.date, h.date),
        Publication::Closure(c) => (c.first_day, c.last_day),
    };
    (
        first.start_instant().timestamp_micros(),
        last.end_instant().timestamp_micros(),
    )
}

/// Whether `cal` holds `p` already (the follower may have given it before calling).
fn holds(cal: &mosharekat_calendar::Calendar, p: &Publication) -> bool {
    match p {
        Publication::Holiday(h) => cal.holidays_on(h.date).contains(h),
        Publication::Closure(c) => cal.closures().contains(c),
    }
}

/// The values of records, without their versions.
fn values<T>(rows: Vec<Record<T>>) -> Vec<T> {
    rows.into_iter().map(|r| r.value.value).collect()
}
