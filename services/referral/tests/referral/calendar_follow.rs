//! The registry's legal calendar, followed: a closure an administrator publishes on the
//! registry (not handed to the service in-process) reaches the referral service through
//! its calendar follower and moves an open referral's due time, with a timeline entry
//! saying why and a notice to the institution.

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use mosharekat_api::common::v1 as common;
use mosharekat_api::common::v1::notification_service_client::NotificationServiceClient;
use mosharekat_api::registry::v1::calendar_service_client::CalendarServiceClient;

use super::*;

on_both_databases!(a_closure_published_on_the_registry_moves_a_due_time,);

async fn a_closure_published_on_the_registry_moves_a_due_time(b: Backend) {
    // 10:00 in Tehran on Saturday 19 Ordibehesht 1405: a referral accepted now is due on
    // 17 Mordad 1405 (the deadlines module checks that date by hand).
    let clock = Clock::manual(Utc.with_ymd_and_hms(2026, 5, 9, 6, 30, 0).unwrap());
    let e = env_with_clock(b, clock).await;
    let inst = e.acceptor(71).await;
    let offered = e.offer(&inst).await.unwrap();
    let accepted = e
        .cases
        .clone()
        .accept_referral(e.as_inst(
            &inst,
            pb::AcceptReferralRequest {
                name: offered.name.clone(),
                etag: offered.etag.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    assert_eq!(accepted.due.as_ref().unwrap().last_day, "1405/05/17");
    let registry = e.registry.as_ref().unwrap().uri();
    CalendarServiceClient::new(lazy(&registry))
        .publish_closure(e.as_role(
            Role::Admin,
            reg::PublishClosureRequest {
                request_id: "closure-follow-1".into(),
                province: "اردبیل".into(),
                nationwide: false,
                first_day: "1405/05/17".into(),
                last_day: "1405/05/17".into(),
                reason: "گرمای شدید هوا".into(),
            },
        ))
        .await
        .unwrap();
    // The follower runs beside the server: wait (bounded) for it to have moved the case.
    let limit = Instant::now() + Duration::from_secs(30);
    let moved = loop {
        let r = e.referral(Role::CenterOfficer, &accepted.name).await;
        if r.due.as_ref().unwrap().last_day != "1405/05/17" {
            break r;
        }
        assert!(Instant::now() < limit, "the due time did not move");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let due = moved.due.as_ref().unwrap();
    assert_eq!(due.last_day, "1405/05/18");
    let late: Vec<_> = due.moves.iter().filter(|m| m.late).collect();
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].from_last_day, "1405/05/17");
    assert!(
        late[0].reason.contains("گرمای شدید هوا"),
        "{}",
        late[0].reason
    );
    assert_eq!(moved.timeline.len(), accepted.timeline.len() + 1);
    let entry = moved.timeline.last().unwrap();
    assert!(entry.note.contains("منتقل شد"), "{}", entry.note);
    // The institution is told, in its own list.
    let theirs = NotificationServiceClient::new(lazy(&e.referral.as_ref().unwrap().uri()))
        .list_notifications(e.as_inst(
            &inst,
            common::ListNotificationsRequest {
                resource: accepted.name.clone(),
                page_size: 100,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .notifications;
    assert!(
        theirs.iter().any(|n| n.text.contains("منتقل")),
        "{:?}",
        theirs.iter().map(|n| &n.text).collect::<Vec<_>>()
    );
}
