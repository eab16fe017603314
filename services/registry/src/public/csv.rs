//! The registry's open-data CSV, on the public HTTP port (the switch on):
//! `GET /public/licence-changes.csv?page_size=…&page_token=…`, the change feed, oldest
//! first, at most [`mosharekat_platform::public::MAX_CSV_ROWS`] rows a download, the next
//! page linked (`Link: <?page_token=…>; rel="next"`). Digits stay ASCII (times, dates,
//! numbers), which spreadsheets read as such.

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use mosharekat_platform::public::{Csv, CsvPage, http_error};

use super::api::{change_kind, changes_page, solar_day};
use super::certificate::{action_label, area_label};
use crate::app::Registry;

/// The change feed's path on the public HTTP port.
pub const LICENCE_CHANGES_PATH: &str = "/public/licence-changes.csv";

/// The columns of the change feed's CSV.
pub const LICENCE_CHANGES_HEADER: &[&str] = &[
    "sequence",
    "kind",
    "time_utc",
    "date_solar_hijri",
    "institution",
    "institution_national_id",
    "verification_code",
    "province",
    "activity_areas",
    "permitted_actions",
];

/// The public HTTP routes of the registry.
pub fn router(registry: Registry) -> axum::Router {
    axum::Router::new()
        .route(LICENCE_CHANGES_PATH, axum::routing::get(licence_changes))
        .with_state(registry)
}

async fn licence_changes(State(registry): State<Registry>, RawQuery(q): RawQuery) -> Response {
    let page = match CsvPage::from_query(q.as_deref()) {
        Ok(p) => p,
        Err(e) => return http_error(e),
    };
    let (rows, next) = match changes_page(&registry, page.size, &page.token).await {
        Ok(r) => r,
        Err(e) => return http_error(e),
    };
    let join = |v: Vec<&str>| v.join("؛ ");
    Csv {
        filename: "licence-changes.csv".into(),
        header: LICENCE_CHANGES_HEADER.to_vec(),
        rows: rows
            .iter()
            .map(|c| {
                let kind = change_kind(c.kind).as_str_name();
                vec![
                    c.sequence.to_string(),
                    kind.trim_start_matches("LICENCE_CHANGE_KIND_").to_owned(),
                    chrono::DateTime::from_timestamp_micros(c.time_us)
                        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                        .unwrap_or_default(),
                    solar_day(c.time_us).0,
                    c.institution_display_name.clone(),
                    c.institution_national_id.clone(),
                    c.code.as_ref().map(|c| c.to_string()).unwrap_or_default(),
                    c.licence.terms.province.clone(),
                    join(
                        c.licence
                            .terms
                            .activity_areas
                            .iter()
                            .map(|a| area_label(*a))
                            .collect(),
                    ),
                    join(
                        c.licence
                            .terms
                            .permitted_actions
                            .iter()
                            .map(|a| action_label(*a))
                            .collect(),
                    ),
                ]
            })
            .collect(),
        next_query: (!next.is_empty())
            .then(|| format!("page_size={}&page_token={next}", page.size)),
    }
    .into_response()
}
