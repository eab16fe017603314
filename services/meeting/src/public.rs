//! The public register of adopted resolutions (domain.md, "The public record"), behind
//! the deployment switch `--public-record` (off by default): served as
//! `mosharekat.meeting.v1.PublicRecordService` (no token: the edge lets its methods
//! through when the switch is on) and as open-data CSV on the public HTTP port
//! (`GET /public/resolutions.csv`).
//!
//! What the public sees is chosen field by field: a resolution's number, text, the body
//! responsible (or, for a member, the title of their position, never the person),
//! deadline, progress figure and state, and its working group's province. Never a
//! member's name or national code, the votes, the progress notes (free text, signed by
//! people), the agenda or the minutes' discussion.

use std::collections::HashMap;

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use mosharekat_api::meeting::v1 as pb;
use mosharekat_api::meeting::v1::public_record_service_server::PublicRecordService;
use mosharekat_calendar::SolarDate;
use mosharekat_platform::error::ApiError;
use mosharekat_platform::pagination;
use mosharekat_platform::public::{Csv, CsvPage, http_error};
use tonic::{Request, Response as GrpcResponse, Status};

use crate::app::Meetings;
use crate::domain::{Position, Resolution, ResolutionState, Time};
use crate::names::{GroupName, MemberName};
use crate::rules;
use crate::store::{self, Where};

/// The public HTTP port's default (`--public-listen`).
pub const PUBLIC_HTTP_PORT: u16 = 8053;

/// The gRPC package whose `PublicRecordService` is the meeting service's public record.
pub const PACKAGE: &str = "mosharekat.meeting.v1";

/// The register's path on the public HTTP port.
pub const RESOLUTIONS_PATH: &str = "/public/resolutions.csv";

/// The public methods (`/package.Service/Method`), from the API's descriptors: what the
/// edge lets through without a token when the switch is on.
pub fn methods() -> Vec<String> {
    mosharekat_platform::public::public_methods(PACKAGE)
}

/// The states of an adopted resolution (one not adopted is not part of the register).
const ADOPTED: [ResolutionState; 4] = [
    ResolutionState::Open,
    ResolutionState::InProgress,
    ResolutionState::Done,
    ResolutionState::Cancelled,
];

/// An office's Persian name, for a member responsible whose record gives no title.
pub fn position_label(p: Position) -> &'static str {
    match p {
        Position::SocialPreventionDeputy => "معاون اجتماعی و پیشگیری از وقوع جرم",
        Position::ChiefInspector => "بازرس کل استان",
        Position::ProsecutorDeputy => "معاون دادستان",
        Position::PrisonsDirectorGeneral => "مدیرکل زندان‌ها",
        Position::DisputeResolutionHead => "رئیس شورای حل اختلاف",
        Position::PopularParticipationDirector => "مدیر مشارکت‌های مردمی",
        Position::InstitutionRepresentative => "نمایندهٔ نهادهای مردمی",
        Position::Secretariat => "دبیرخانهٔ کارگروه",
    }
}

/// An adopted resolution as the public may know it.
#[derive(Debug, Clone, PartialEq)]
pub struct PublicResolution {
    pub name: String,
    /// `{meeting}-{n}`.
    pub number: String,
    pub working_group: GroupName,
    pub province: String,
    pub text: String,
    pub responsible: String,
    pub deadline: Option<Time>,
    pub progress: i32,
    pub state: ResolutionState,
    pub overdue: bool,
}

impl Meetings {
    /// A page of adopted resolutions (of `group`, or of every group), in id order.
    pub async fn public_resolutions(
        &self,
        group: Option<&GroupName>,
        size: u64,
        page_token: &str,
    ) -> Result<(Vec<PublicResolution>, String), ApiError> {
        let c = self.db.conn();
        let now = self.db.now_micros();
        let gid = group.map(|g| g.id().to_owned()).unwrap_or_default();
        let fp = pagination::fingerprint(&["public-resolutions", &gid]);
        let mut w = Where::new();
        w.add(
            "state IN (?, ?, ?, ?)",
            ADOPTED.map(|s| store::state_code(s).into()),
        );
        if let Some(g) = group {
            w.add("working_group_id = ?", [g.id().into()]);
        }
        if let Some(last) = pagination::decode::<String>(page_token, &fp, "page_token")? {
            w.add("id > ?", [last.into()]);
        }
        let mut rows = store::resolutions(c, w, size + 1).await?;
        let next = pagination::next_page(&mut rows, size, &fp, |r| r.value.name.id().to_owned());
        let mut groups: HashMap<String, String> = HashMap::new();
        let mut titles: HashMap<String, String> = HashMap::new();
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let res: Resolution = r.value.value;
            let g = res.name.group().clone();
            if !groups.contains_key(g.id()) {
                let province = store::group(c, &g)
                    .await?
                    .map(|x| x.value.value.province)
                    .unwrap_or_default();
                groups.insert(g.id().to_owned(), province);
            }
            let responsible = if res.responsible_member.is_empty() {
                res.responsible_body.clone()
            } else {
                match titles.get(&res.responsible_member) {
                    Some(t) => t.clone(),
                    None => {
                        let t = self.position_title_of(&res.responsible_member).await?;
                        titles.insert(res.responsible_member.clone(), t.clone());
                        t
                    }
                }
            };
            out.push(PublicResolution {
                name: res.name.to_string(),
                number: format!("{}-{}", store::last_segment(&res.meeting), res.number),
                province: groups.get(g.id()).cloned().unwrap_or_default(),
                working_group: g,
                text: res.text.clone(),
                responsible,
                deadline: res.deadline,
                progress: res.progress,
                state: res.state,
                overdue: rules::resolution_overdue(res.state, res.deadline, now),
            });
        }
        Ok((out, next))
    }

    /// The title of the position of the member `name` (never their name): as their
    /// record gives it, or their office's.
    async fn position_title_of(&self, name: &str) -> Result<String, ApiError> {
        let Ok(member) = MemberName::parse(name, "responsible_member") else {
            return Ok(String::new());
        };
        Ok(store::member(self.db.conn(), &member)
            .await?
            .map(|m| {
                let m = m.value.value;
                if m.position_title.trim().is_empty() {
                    position_label(m.position).to_owned()
                } else {
                    m.position_title
                }
            })
            .unwrap_or_default())
    }
}

fn timestamp(t: Time) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.seconds,
        nanos: t.nanos as i32,
    }
}

/// The day of `t` in Tehran, Solar Hijri, `YYYY/MM/DD`.
fn solar_day(t: Option<Time>) -> String {
    t.and_then(Time::chrono)
        .and_then(|t| SolarDate::from_instant(t).ok())
        .map(|d| d.to_string())
        .unwrap_or_default()
}

fn to_pb(r: &PublicResolution) -> pb::PublicResolution {
    pb::PublicResolution {
        name: r.name.clone(),
        number: r.number.clone(),
        working_group: r.working_group.to_string(),
        province: r.province.clone(),
        text: r.text.clone(),
        responsible: r.responsible.clone(),
        deadline: r.deadline.map(timestamp),
        deadline_date: solar_day(r.deadline),
        progress: r.progress,
        state: r.state.into(),
        overdue: r.overdue,
    }
}

fn group_filter(raw: &str) -> Result<Option<GroupName>, ApiError> {
    if raw.is_empty() {
        Ok(None)
    } else {
        GroupName::parse(raw, "working_group").map(Some)
    }
}

#[tonic::async_trait]
impl PublicRecordService for Meetings {
    #[tracing::instrument(skip_all)]
    async fn list_public_resolutions(
        &self,
        request: Request<pb::ListPublicResolutionsRequest>,
    ) -> Result<GrpcResponse<pb::ListPublicResolutionsResponse>, Status> {
        let req = request.into_inner();
        let size = pagination::page_size(req.page_size, "page_size")?;
        let group = group_filter(&req.working_group)?;
        let (rows, next_page_token) = self
            .public_resolutions(group.as_ref(), size, &req.page_token)
            .await?;
        Ok(GrpcResponse::new(pb::ListPublicResolutionsResponse {
            resolutions: rows.iter().map(to_pb).collect(),
            next_page_token,
        }))
    }
}

/// The state's name as the API spells it after its prefix.
fn state_token(s: ResolutionState) -> &'static str {
    match s {
        ResolutionState::NotAdopted => "NOT_ADOPTED",
        ResolutionState::Open => "OPEN",
        ResolutionState::InProgress => "IN_PROGRESS",
        ResolutionState::Done => "DONE",
        ResolutionState::Cancelled => "CANCELLED",
    }
}

/// The columns of the register's CSV.
pub const RESOLUTIONS_HEADER: &[&str] = &[
    "number",
    "province",
    "working_group",
    "text",
    "responsible",
    "deadline_utc",
    "deadline_solar_hijri",
    "progress",
    "state",
    "overdue",
];

/// The public HTTP routes of the meeting service:
/// `GET /public/resolutions.csv?working_group=…&page_size=…&page_token=…`.
pub fn router(meetings: Meetings) -> axum::Router {
    axum::Router::new()
        .route(RESOLUTIONS_PATH, axum::routing::get(resolutions_csv))
        .with_state(meetings)
}

async fn resolutions_csv(State(meetings): State<Meetings>, RawQuery(q): RawQuery) -> Response {
    let page = match CsvPage::from_query(q.as_deref()) {
        Ok(p) => p,
        Err(e) => return http_error(e),
    };
    // `working_group=working-groups/{id}` (slashes as they are, or %2F).
    let group_raw = q
        .as_deref()
        .unwrap_or_default()
        .split('&')
        .find_map(|p| p.strip_prefix("working_group="))
        .map(|g| g.replace("%2F", "/").replace("%2f", "/"))
        .unwrap_or_default();
    let group = match group_filter(&group_raw) {
        Ok(g) => g,
        Err(e) => return http_error(e),
    };
    let (rows, next) = match meetings
        .public_resolutions(group.as_ref(), page.size, &page.token)
        .await
    {
        Ok(r) => r,
        Err(e) => return http_error(e),
    };
    let group_query = if group_raw.is_empty() {
        String::new()
    } else {
        format!("working_group={group_raw}&")
    };
    Csv {
        filename: "resolutions.csv".into(),
        header: RESOLUTIONS_HEADER.to_vec(),
        rows: rows
            .iter()
            .map(|r| {
                vec![
                    r.number.clone(),
                    r.province.clone(),
                    r.working_group.to_string(),
                    r.text.clone(),
                    r.responsible.clone(),
                    r.deadline
                        .and_then(Time::chrono)
                        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                        .unwrap_or_default(),
                    solar_day(r.deadline),
                    r.progress.to_string(),
                    state_token(r.state).to_owned(),
                    r.overdue.to_string(),
                ]
            })
            .collect(),
        next_query: (!next.is_empty())
            .then(|| format!("{group_query}page_size={}&page_token={next}", page.size)),
    }
    .into_response()
}
