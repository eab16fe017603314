//! Reading many: lists with their filters, suggestions, statistics.

use std::collections::BTreeMap;

use chrono::Utc;
use mosharekat_api::referral::v1 as pb;
use mosharekat_api::registry::v1::PermittedAction;
use mosharekat_persian::fold_for_search;
use mosharekat_platform::auth::Role;
use mosharekat_platform::ctx::CallContext;
use mosharekat_platform::db::{from_timestamp, now_micros};
use mosharekat_platform::error::ApiError;
use mosharekat_platform::pagination;

use crate::cases::{
    Cases, FILING_READERS, REFERRAL_READERS, filing_state_name, referral_state_name,
};
use crate::domain;
use crate::input;
use crate::reads;
use crate::store::{self, Record, Where};

fn enum_value<T: TryFrom<i32>>(raw: i32, field: &str) -> Result<Option<i32>, ApiError> {
    match raw {
        0 => Ok(None),
        n if T::try_from(n).is_ok() => Ok(Some(n)),
        _ => Err(ApiError::invalid(field, "is not a known value")),
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

fn institution_filter(raw: &str, field: &str) -> Result<Option<String>, ApiError> {
    if raw.is_empty() {
        return Ok(None);
    }
    input::parse_name(raw, "institutions", field).map(Some)
}

impl Cases {
    pub async fn list_filings(
        &self,
        ctx: &CallContext,
        req: &pb::ListFilingsRequest,
    ) -> Result<pb::ListFilingsResponse, ApiError> {
        ctx.require(FILING_READERS)?;
        let size = pagination::page_size(req.page_size, "page_size")?;
        let mut w = Where::new();
        let kind = enum_value::<pb::FilingKind>(req.kind, "kind")?;
        let state = enum_value::<pb::FilingState>(req.state, "state")?;
        let area = enum_value::<mosharekat_api::common::v1::ActivityArea>(
            req.activity_area,
            "activity_area",
        )?;
        let after = time(&req.submitted_after, "submitted_after")?;
        let before = time(&req.submitted_before, "submitted_before")?;
        let mut institution = institution_filter(&req.institution, "institution")?;
        if req.authority.chars().count() > 200 {
            return Err(ApiError::invalid(
                "authority",
                "must be at most 200 characters",
            ));
        }
        match ctx.role() {
            Role::Institution => {
                institution = ctx
                    .principal
                    .institution
                    .clone()
                    .filter(|own| institution.as_ref().is_none_or(|i| i == own))
                    .or(Some(String::new()))
            }
            Role::JudicialOfficer => {
                w.add("state <> ?", [(pb::FilingState::Draft as i32).into()]);
                if let Some(a) = &ctx.principal.authority {
                    w.add("authority_key = ?", [fold_for_search(a).into()]);
                }
            }
            _ => {}
        }
        if let Some(i) = &institution {
            w.add("institution_id = ?", [i.clone().into()]);
        }
        if let Some(k) = kind {
            w.add("kind = ?", [k.into()]);
        }
        if let Some(s) = state {
            w.add("state = ?", [s.into()]);
        }
        if let Some(a) = area {
            w.add("area = ?", [a.into()]);
        }
        if !req.authority.is_empty() {
            w.add(
                "authority_key = ?",
                [fold_for_search(&req.authority).into()],
            );
        }
        if let Some(t) = after {
            w.add("submit_us >= ?", [t.into()]);
        }
        if let Some(t) = before {
            w.add("submit_us < ?", [t.into()]);
        }
        let fp = pagination::fingerprint(&[
            "filings",
            &ctx.principal.subject,
            institution.as_deref().unwrap_or(""),
            &req.kind.to_string(),
            &req.state.to_string(),
            &req.activity_area.to_string(),
            &fold_for_search(&req.authority),
            &format!("{after:?}{before:?}"),
        ]);
        if let Some(last) = pagination::decode::<String>(&req.page_token, &fp, "page_token")? {
            w.add("id > ?", [last.into()]);
        }
        let mut rows = store::list_filings(self.db.conn(), w, size + 1).await?;
        let next_page_token = pagination::next_page(&mut rows, size, &fp, |r| r.id.clone());
        let mut filings = Vec::with_capacity(rows.len());
        for r in rows {
            filings.push(self.finish_filing(self.db.conn(), ctx, r).await?);
        }
        let read: Vec<&str> = filings
            .iter()
            .filter(|f| reads::is_recorded(ctx, &f.institution))
            .map(|f| f.name.as_str())
            .collect();
        self.reads.record(ctx, &read).await?;
        Ok(pb::ListFilingsResponse {
            filings,
            next_page_token,
        })
    }

    pub async fn list_referrals(
        &self,
        ctx: &CallContext,
        req: &pb::ListReferralsRequest,
    ) -> Result<pb::ListReferralsResponse, ApiError> {
        ctx.require(REFERRAL_READERS)?;
        let size = pagination::page_size(req.page_size, "page_size")?;
        let mut w = Where::new();
        let source = enum_value::<pb::ReferralSource>(req.source, "source")?;
        let kind = enum_value::<pb::ReferralKind>(req.kind, "kind")?;
        let state = enum_value::<pb::ReferralState>(req.state, "state")?;
        let area = enum_value::<mosharekat_api::common::v1::ActivityArea>(
            req.activity_area,
            "activity_area",
        )?;
        let mut institution = institution_filter(&req.institution, "institution")?;
        if req.province.chars().count() > 100 {
            return Err(ApiError::invalid(
                "province",
                "must be at most 100 characters",
            ));
        }
        if ctx.role() == Role::Institution {
            institution = ctx
                .principal
                .institution
                .clone()
                .filter(|own| institution.as_ref().is_none_or(|i| i == own))
                .or(Some(String::new()));
        }
        if let Some(i) = &institution {
            w.add("institution_id = ?", [i.clone().into()]);
        }
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
        if !req.province.is_empty() {
            w.add("province_key = ?", [fold_for_search(&req.province).into()]);
        }
        if req.overdue_only {
            w.add(
                "state IN (?, ?) AND due_us < ?",
                [
                    (pb::ReferralState::Accepted as i32).into(),
                    (pb::ReferralState::InProgress as i32).into(),
                    now_micros().into(),
                ],
            );
        }
        let fp = pagination::fingerprint(&[
            "referrals",
            institution.as_deref().unwrap_or(""),
            &format!("{source:?}{kind:?}{state:?}{area:?}{}", req.overdue_only),
            &fold_for_search(&req.province),
        ]);
        if let Some(last) = pagination::decode::<String>(&req.page_token, &fp, "page_token")? {
            w.add("id > ?", [last.into()]);
        }
        let mut rows = store::list_referrals(self.db.conn(), w, size + 1).await?;
        let next_page_token = pagination::next_page(&mut rows, size, &fp, |r| r.id.clone());
        let mut referrals = Vec::with_capacity(rows.len());
        for r in rows {
            referrals.push(self.finish_referral(self.db.conn(), ctx, r).await?);
        }
        let read: Vec<&str> = referrals
            .iter()
            .filter(|r| reads::is_recorded(ctx, &r.institution))
            .map(|r| r.name.as_str())
            .collect();
        self.reads.record(ctx, &read).await?;
        Ok(pb::ListReferralsResponse {
            referrals,
            next_page_token,
        })
    }

    pub async fn suggest(
        &self,
        ctx: &CallContext,
        req: &pb::SuggestInstitutionsRequest,
    ) -> Result<pb::SuggestInstitutionsResponse, ApiError> {
        ctx.require(&[
            Role::Admin,
            Role::CenterOfficer,
            Role::JudicialOfficer,
            Role::Auditor,
            Role::Service,
        ])?;
        let mut v = mosharekat_platform::error::Violations::new();
        input::area(&mut v, "activity_area".into(), req.activity_area);
        let province = v
            .check(
                "province",
                mosharekat_persian::normalize_name(&req.province, 100),
            )
            .unwrap_or_default();
        if req.max_results < 0 {
            v.add("max_results", "must not be negative");
        }
        v.into_result()?;
        let max = match req.max_results {
            0 => 10,
            n => n.min(50) as usize,
        };
        let candidates = self
            .registry
            .licensed_institutions(ctx, &province, req.activity_area)
            .await?;
        let now = Utc::now();
        let mut ranked = Vec::new();
        for inst in candidates {
            let answer = self
                .registry
                .eligibility(
                    ctx,
                    &inst.name,
                    PermittedAction::AcceptReferrals,
                    req.activity_area,
                    &province,
                )
                .await?;
            if !answer.eligible {
                continue;
            }
            let id = store::institution_id(&inst.name).to_owned();
            let mine = store::referrals_of(self.db.conn(), &id).await?;
            let open = mine.iter().filter(|r| domain::is_open(state_of(r))).count() as i64;
            let resolved: Vec<_> = mine
                .iter()
                .filter(|r| state_of(r) == pb::ReferralState::Resolved)
                .collect();
            let reconciled = resolved
                .iter()
                .filter(|r| r.body.outcome == pb::ReferralOutcome::Reconciled as i32)
                .count();
            let rate = if resolved.is_empty() {
                0.0
            } else {
                reconciled as f64 / resolved.len() as f64
            };
            let unextended_overdue = mine.iter().any(|r| {
                let due = r
                    .body
                    .due_time
                    .as_ref()
                    .and_then(from_timestamp)
                    .and_then(chrono::DateTime::from_timestamp_micros);
                domain::is_overdue(state_of(r), due, now) && !r.body.extended
            });
            ranked.push(pb::Suggestion {
                institution: inst.name.clone(),
                display_name: inst.display_name.clone(),
                rank: 0,
                open_referrals: open,
                reconciliation_rate: rate,
                resolved_referrals: resolved.len() as i64,
                has_unextended_overdue: unextended_overdue,
                reason: String::new(),
            });
        }
        ranked.sort_by(|a, b| {
            a.has_unextended_overdue
                .cmp(&b.has_unextended_overdue)
                .then(a.open_referrals.cmp(&b.open_referrals))
                .then(b.reconciliation_rate.total_cmp(&a.reconciliation_rate))
                .then(b.resolved_referrals.cmp(&a.resolved_referrals))
                .then(a.institution.cmp(&b.institution))
        });
        ranked.truncate(max);
        for (i, s) in ranked.iter_mut().enumerate() {
            s.rank = i as i32 + 1;
            s.reason = if s.has_unextended_overdue {
                "ranked last: let a referral run overdue without an extension (mediation regulation art. 29)".into()
            } else {
                format!(
                    "eligible now; {} open referrals; reconciled {:.0}% of {} resolved",
                    s.open_referrals,
                    s.reconciliation_rate * 100.0,
                    s.resolved_referrals
                )
            };
        }
        Ok(pb::SuggestInstitutionsResponse {
            suggestions: ranked,
        })
    }

    pub async fn statistics(
        &self,
        ctx: &CallContext,
        req: &pb::GetStatisticsRequest,
    ) -> Result<pb::GetStatisticsResponse, ApiError> {
        ctx.require(&[
            Role::Service,
            Role::Admin,
            Role::Auditor,
            Role::CenterOfficer,
            Role::Secretary,
        ])?;
        let province = mosharekat_persian::normalize_name(&req.province, 100)
            .map_err(|e| ApiError::invalid("province", e.to_string()))?;
        let start = time(&req.start_time, "start_time")?
            .ok_or_else(|| ApiError::invalid("start_time", "is required"))?;
        let end = time(&req.end_time, "end_time")?
            .ok_or_else(|| ApiError::invalid("end_time", "is required"))?;
        if end <= start {
            return Err(ApiError::invalid("end_time", "must be after start_time"));
        }
        let key = fold_for_search(&province);
        let filings: Vec<Record<pb::Filing>> =
            store::in_period(self.db.conn(), "filings", &key, start, end).await?;
        let referrals: Vec<Record<pb::Referral>> =
            store::in_period(self.db.conn(), "referrals", &key, start, end).await?;
        let count = |keys: Vec<String>| -> Vec<pb::Count> {
            let mut m: BTreeMap<String, i64> = BTreeMap::new();
            for k in keys {
                *m.entry(k).or_default() += 1;
            }
            m.into_iter()
                .map(|(key, count)| pb::Count { key, count })
                .collect()
        };
        let area_name = |a: i32| {
            mosharekat_api::common::v1::ActivityArea::try_from(a)
                .map(|a| {
                    a.as_str_name()
                        .trim_start_matches("ACTIVITY_AREA_")
                        .to_owned()
                })
                .unwrap_or_default()
        };
        // Drafts are the institution's own work, not yet a filing with the judiciary.
        let filed: Vec<&pb::Filing> = filings
            .iter()
            .map(|r| &r.body)
            .filter(|f| f.state != pb::FilingState::Draft as i32)
            .collect();
        let now = Utc::now();
        let resolved: Vec<&pb::Referral> = referrals
            .iter()
            .map(|r| &r.body)
            .filter(|r| r.state == pb::ReferralState::Resolved as i32)
            .collect();
        let reconciled = resolved
            .iter()
            .filter(|r| r.outcome == pb::ReferralOutcome::Reconciled as i32)
            .count();
        let mut days: Vec<f64> = resolved
            .iter()
            .filter_map(|r| {
                let a = from_timestamp(r.accept_time.as_ref()?)?;
                let b = from_timestamp(r.resolve_time.as_ref()?)?;
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
            .filter(|r| {
                let due = r
                    .body
                    .due_time
                    .as_ref()
                    .and_then(from_timestamp)
                    .and_then(chrono::DateTime::from_timestamp_micros);
                domain::is_overdue(state_of(r), due, now)
            })
            .count();
        Ok(pb::GetStatisticsResponse {
            province,
            filings_total: filed.len() as i64,
            filings_by_kind: count(
                filed
                    .iter()
                    .map(|f| {
                        pb::FilingKind::try_from(f.kind)
                            .map(|k| {
                                k.as_str_name()
                                    .trim_start_matches("FILING_KIND_")
                                    .to_owned()
                            })
                            .unwrap_or_default()
                    })
                    .collect(),
            ),
            filings_by_state: count(filed.iter().map(|f| filing_state_name(f.state)).collect()),
            filings_by_area: count(filed.iter().map(|f| area_name(f.activity_area)).collect()),
            filings_by_institution: count(filed.iter().map(|f| f.institution.clone()).collect()),
            referrals_total: referrals.len() as i64,
            referrals_by_kind: count(
                referrals
                    .iter()
                    .map(|r| {
                        pb::ReferralKind::try_from(r.body.kind)
                            .map(|k| {
                                k.as_str_name()
                                    .trim_start_matches("REFERRAL_KIND_")
                                    .to_owned()
                            })
                            .unwrap_or_default()
                    })
                    .collect(),
            ),
            referrals_by_state: count(
                referrals
                    .iter()
                    .map(|r| referral_state_name(r.body.state))
                    .collect(),
            ),
            referrals_by_area: count(
                referrals
                    .iter()
                    .map(|r| area_name(r.body.activity_area))
                    .collect(),
            ),
            referrals_by_institution: count(
                referrals
                    .iter()
                    .map(|r| r.body.institution.clone())
                    .collect(),
            ),
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
}

fn state_of(r: &Record<pb::Referral>) -> pb::ReferralState {
    pb::ReferralState::try_from(r.body.state).unwrap_or(pb::ReferralState::Unspecified)
}
