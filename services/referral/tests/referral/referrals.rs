//! Referrals: offered, accepted, progressed and resolved; overdue by the service's clock.

use super::*;

on_both_databases!(
    a_referral_is_offered_accepted_progressed_and_resolved,
    overdue_follows_the_services_clock,
);

async fn a_referral_is_offered_accepted_progressed_and_resolved(b: Backend) {
    let e = env(b).await;
    let inst = e.acceptor(3).await;
    let mut c = e.cases.clone();
    let r = e.offer(&inst).await.unwrap();
    assert_eq!(r.state, pb::ReferralState::Offered as i32);
    assert_eq!(r.source_case_number, "1405-123");
    let offered = e.referral(Role::CenterOfficer, &r.name).await;
    assert_eq!(r, offered);
    let r = e.accept(&inst, &r).await;
    // What the create and the change returned (built without reading the row back) is
    // what is stored.
    let stored = e.read_as(&inst, &r.name).await.unwrap();
    assert_eq!(r, stored);
    let accepted = r.accept_time.unwrap().seconds;
    let due = r.due_time.unwrap().seconds;
    let days = (due - accepted) as f64 / 86400.0;
    assert!((89.0..=92.0).contains(&days), "three months: {days} days");
    for n in 1..=2 {
        let session = pb::ProgressEntry {
            session_time: Some(from_now(Duration::ZERO)),
            attendees: vec!["حسن محمدی".into(), "رضا کریمی".into(), "میانجی".into()],
            notes: format!("جلسهٔ {n}"),
            ..Default::default()
        };
        c.record_progress(e.as_inst(
            &inst,
            pb::RecordProgressRequest {
                name: r.name.clone(),
                etag: String::new(),
                entry: Some(session),
            },
        ))
        .await
        .unwrap();
    }
    // The source extends once; a second extension is refused.
    let later = prost_types::Timestamp {
        seconds: due + 30 * 86400,
        nanos: 0,
    };
    let ext = c
        .extend_referral(e.as_role(
            Role::CenterOfficer,
            pb::ExtendReferralRequest {
                name: r.name.clone(),
                etag: String::new(),
                due_time: Some(later),
                reason: "درخواست طرفین".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    assert!(ext.extended);
    let err = c
        .extend_referral(e.as_role(
            Role::CenterOfficer,
            pb::ExtendReferralRequest {
                name: r.name.clone(),
                etag: String::new(),
                due_time: Some(prost_types::Timestamp {
                    seconds: due + 40 * 86400,
                    nanos: 0,
                }),
                reason: "باز".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "ALREADY_EXTENDED");
    let err = c
        .resolve_referral(e.as_inst(
            &inst,
            pb::ResolveReferralRequest {
                name: r.name.clone(),
                outcome: pb::ReferralOutcome::NotReconciled as i32,
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(fields(&err), ["not_reconciled_reason"]);
    let r = c
        .resolve_referral(e.as_inst(
            &inst,
            pb::ResolveReferralRequest {
                name: r.name.clone(),
                etag: String::new(),
                outcome: pb::ReferralOutcome::Reconciled as i32,
                not_reconciled_reason: 0,
                settlement_text: "صلح‌نامه".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    assert_eq!(
        (r.state, r.progress.len()),
        (pb::ReferralState::Resolved as i32, 2)
    );
    let steps: Vec<_> = r.timeline.iter().map(|t| t.to_state.as_str()).collect();
    assert_eq!(
        steps,
        [
            "OFFERED",
            "ACCEPTED",
            "IN_PROGRESS",
            "IN_PROGRESS",
            "IN_PROGRESS",
            "RESOLVED"
        ]
    );
    // Statistics show it.
    let now = from_now(Duration::ZERO).seconds;
    let s = c
        .get_statistics(e.as_role(
            Role::Secretary,
            pb::GetStatisticsRequest {
                province: "اردبيل".into(),
                start_time: Some(prost_types::Timestamp {
                    seconds: now - 3600,
                    nanos: 0,
                }),
                end_time: Some(prost_types::Timestamp {
                    seconds: now + 3600,
                    nanos: 0,
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (s.referrals_total, s.resolved_count, s.reconciliation_rate),
        (1, 1, 1.0)
    );
    assert_eq!(s.referrals_by_kind[0].key, "RECONCILIATION");
    // Suggest ranks the institution with its record.
    let sug = c
        .suggest_institutions(e.as_role(
            Role::CenterOfficer,
            pb::SuggestInstitutionsRequest {
                activity_area: ActivityArea::Family as i32,
                province: "اردبیل".into(),
                max_results: 5,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sug.suggestions.len(), 1);
    assert_eq!(
        (
            sug.suggestions[0].institution.as_str(),
            sug.suggestions[0].rank
        ),
        (inst.name.as_str(), 1)
    );
    assert_eq!(sug.suggestions[0].resolved_referrals, 1);
}

/// A referral runs overdue when the service's clock passes its due time (moved, not
/// waited for): it says so, lists among the overdue, counts in the statistics, and ranks
/// its institution last until the due time is extended.
async fn overdue_follows_the_services_clock(b: Backend) {
    let clock = Clock::manual(chrono::Utc::now());
    let e = env_with_clock(b, clock.clone()).await;
    let late = e.acceptor(41).await;
    let timely = e.acceptor(42).await;
    let mut c = e.cases.clone();
    let r = e.offer(&late).await.unwrap();
    let r = e.accept(&late, &r).await;
    assert!(!r.overdue);
    let get = |c: &mut ReferralServiceClient<Channel>| {
        let req = e.as_role(
            Role::CenterOfficer,
            pb::GetReferralRequest {
                name: r.name.clone(),
            },
        );
        let mut c = c.clone();
        async move {
            c.get_referral(req)
                .await
                .unwrap()
                .into_inner()
                .referral
                .unwrap()
        }
    };
    let overdue_list = |c: &mut ReferralServiceClient<Channel>| {
        let req = e.as_role(
            Role::CenterOfficer,
            pb::ListReferralsRequest {
                overdue_only: true,
                ..Default::default()
            },
        );
        let mut c = c.clone();
        async move { c.list_referrals(req).await.unwrap().into_inner().referrals }
    };
    assert!(overdue_list(&mut c).await.is_empty());
    // Three months and a week on.
    clock.advance(chrono::Duration::days(100));
    assert!(get(&mut c).await.overdue, "{b:?}");
    let listed = overdue_list(&mut c).await;
    assert_eq!(listed.len(), 1);
    assert!(listed[0].overdue);
    let now = clock.now().timestamp();
    let stats = c
        .get_statistics(e.as_role(
            Role::Admin,
            pb::GetStatisticsRequest {
                province: "اردبیل".into(),
                start_time: Some(prost_types::Timestamp {
                    seconds: now - 200 * 86400,
                    nanos: 0,
                }),
                end_time: Some(prost_types::Timestamp {
                    seconds: now,
                    nanos: 0,
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.overdue_count, 1);
    let suggest = |c: &mut ReferralServiceClient<Channel>| {
        let req = e.as_role(
            Role::CenterOfficer,
            pb::SuggestInstitutionsRequest {
                activity_area: ActivityArea::Family as i32,
                province: "اردبیل".into(),
                max_results: 5,
                ..Default::default()
            },
        );
        let mut c = c.clone();
        async move {
            c.suggest_institutions(req)
                .await
                .unwrap()
                .into_inner()
                .suggestions
        }
    };
    let ranked = suggest(&mut c).await;
    assert_eq!(ranked.len(), 2);
    assert_eq!(
        (
            ranked[0].institution.as_str(),
            ranked[1].institution.as_str()
        ),
        (timely.name.as_str(), late.name.as_str()),
        "the late institution ranks last"
    );
    assert!(ranked[1].has_unextended_overdue && !ranked[0].has_unextended_overdue);
    assert_eq!(ranked[1].open_referrals, 1);
    // Extended (once, within three months of the due time): no longer overdue.
    let due = r.due_time.unwrap().seconds;
    c.extend_referral(e.as_role(
        Role::CenterOfficer,
        pb::ExtendReferralRequest {
            name: r.name.clone(),
            etag: String::new(),
            due_time: Some(prost_types::Timestamp {
                seconds: due + 60 * 86400,
                nanos: 0,
            }),
            reason: "درخواست طرفین".into(),
        },
    ))
    .await
    .unwrap();
    assert!(!get(&mut c).await.overdue);
    assert!(!suggest(&mut c).await[1].has_unextended_overdue);
}
