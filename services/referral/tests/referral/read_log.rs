//! The record of reads: every read recorded, auditors list it, and what recording costs.

use super::*;

on_both_databases!(
    every_read_is_recorded_and_auditors_list_it,
    what_recording_a_read_costs,
);

fn read_log_request(
    resource: &str,
    reader: &str,
    page_size: i32,
    page_token: &str,
) -> pb::ListReadRecordsRequest {
    pb::ListReadRecordsRequest {
        page_size,
        page_token: page_token.into(),
        resource: resource.into(),
        reader: reader.into(),
    }
}

/// Every read of a filing or referral by anyone but its own institution is recorded —
/// Get, and each record a List returns — and auditors list the record per resource and
/// per reader, page by page.
async fn every_read_is_recorded_and_auditors_list_it(b: Backend) {
    let e = env(b).await;
    let inst = e.filer(32).await;
    let stranger = e.acceptor(33).await;
    let mut c = e.cases.clone();
    let f = submitted_complaint(&e, &inst).await;
    let f2 = submitted_complaint(&e, &inst).await;
    let r = e.offer(&inst).await.unwrap();
    let mut audit = c.clone();
    let reads = |resource: &str, reader: &str| {
        let mut a = e.cases.clone();
        let req = e.as_role(Role::Auditor, read_log_request(resource, reader, 0, ""));
        async move { a.list_read_records(req).await.unwrap().into_inner().records }
    };
    // The institution's own reads are not recorded; nor a read that found nothing.
    c.get_filing(e.as_inst(
        &inst,
        pb::GetFilingRequest {
            name: f.name.clone(),
        },
    ))
    .await
    .unwrap();
    c.list_filings(e.as_inst(&inst, pb::ListFilingsRequest::default()))
        .await
        .unwrap();
    e.read_as(&inst, &r.name).await.unwrap();
    c.list_referrals(e.as_inst(&inst, pb::ListReferralsRequest::default()))
        .await
        .unwrap();
    assert_eq!(
        c.get_filing(e.as_inst(
            &stranger,
            pb::GetFilingRequest {
                name: f.name.clone()
            }
        ))
        .await
        .unwrap_err()
        .code(),
        Code::NotFound
    );
    assert!(reads("", "").await.is_empty(), "nothing recorded yet");

    // Each read path, by others.
    c.get_filing(authed(
        bearer_for(&e, Role::JudicialOfficer, &inst),
        pb::GetFilingRequest {
            name: f.name.clone(),
        },
    ))
    .await
    .unwrap();
    let page = c
        .list_filings(e.as_role(Role::Admin, pb::ListFilingsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .filings;
    assert_eq!(page.len(), 2);
    c.get_referral(e.as_role(
        Role::CenterOfficer,
        pb::GetReferralRequest {
            name: r.name.clone(),
        },
    ))
    .await
    .unwrap();
    c.list_referrals(e.as_role(Role::Auditor, pb::ListReferralsRequest::default()))
        .await
        .unwrap();
    let mut for_alice = e.as_role(
        Role::Service,
        pb::GetReferralRequest {
            name: r.name.clone(),
        },
    );
    for_alice
        .metadata_mut()
        .insert("x-on-behalf-of", "alice".parse().unwrap());
    c.get_referral(for_alice).await.unwrap();

    // Per resource.
    let of_f = reads(&f.name, "").await;
    let seen: Vec<(&str, &str, &str)> = of_f
        .iter()
        .map(|x| (x.reader.as_str(), x.role.as_str(), x.method.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (
                "test-judicial_officer",
                "JUDICIAL_OFFICER",
                "/mosharekat.referral.v1.ReferralService/GetFiling"
            ),
            (
                "test-admin",
                "ADMIN",
                "/mosharekat.referral.v1.ReferralService/ListFilings"
            ),
        ]
    );
    assert!(
        of_f.iter()
            .all(|x| x.resource == f.name && x.time.is_some())
    );
    assert!(of_f[0].sequence < of_f[1].sequence);
    let of_r = reads(&r.name, "").await;
    let seen: Vec<(&str, &str, &str)> = of_r
        .iter()
        .map(|x| (x.role.as_str(), x.method.as_str(), x.on_behalf_of.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (
                "CENTER_OFFICER",
                "/mosharekat.referral.v1.ReferralService/GetReferral",
                ""
            ),
            (
                "AUDITOR",
                "/mosharekat.referral.v1.ReferralService/ListReferrals",
                ""
            ),
            (
                "SERVICE",
                "/mosharekat.referral.v1.ReferralService/GetReferral",
                "alice"
            ),
        ]
    );
    // Per reader: the administrator's one List recorded both filings it returned.
    let by_admin = reads("", "test-admin").await;
    let mut names: Vec<&str> = by_admin.iter().map(|x| x.resource.as_str()).collect();
    names.sort();
    let mut want = [f.name.as_str(), f2.name.as_str()];
    want.sort();
    assert_eq!(names, want);
    assert_eq!(
        by_admin[0].time, by_admin[1].time,
        "one statement for the page"
    );
    assert_eq!(reads(&f2.name, "test-admin").await.len(), 1, "both filters");
    assert!(reads(&f2.name, "test-judicial_officer").await.is_empty());

    // Paged, in order, each record once.
    let all = reads("", "").await;
    assert_eq!(all.len(), 6);
    let mut paged = Vec::new();
    let mut token = String::new();
    loop {
        let resp = audit
            .list_read_records(e.as_role(Role::Admin, read_log_request("", "", 4, &token)))
            .await
            .unwrap()
            .into_inner();
        paged.extend(resp.records);
        if resp.next_page_token.is_empty() {
            break;
        }
        token = resp.next_page_token;
    }
    assert_eq!(paged, all);
    // Auditors and administrators only; filters and tokens checked.
    for role in [
        Role::CenterOfficer,
        Role::JudicialOfficer,
        Role::Institution,
        Role::Service,
    ] {
        let err = audit
            .list_read_records(authed(
                bearer_for(&e, role, &inst),
                read_log_request("", "", 0, ""),
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{role}");
    }
    let err = audit
        .list_read_records(e.as_role(Role::Auditor, read_log_request(&inst.name, "", 0, "")))
        .await
        .unwrap_err();
    assert_eq!(fields(&err), ["resource"]);
    let first = audit
        .list_read_records(e.as_role(Role::Auditor, read_log_request("", "", 1, "")))
        .await
        .unwrap()
        .into_inner();
    let err = audit
        .list_read_records(e.as_role(
            Role::Auditor,
            read_log_request(&f.name, "", 1, &first.next_page_token),
        ))
        .await
        .unwrap_err();
    assert_eq!(fields(&err), ["page_token"]);
}

/// What recording a read costs: GetReferral by the assigned institution (not recorded)
/// against GetReferral by the centre (recorded), one call at a time, and a List page of
/// 50 by each. Prints the figures (`--no-capture`); asserts only that the reads were
/// recorded. See BENCHMARKS.md.
async fn what_recording_a_read_costs(b: Backend) {
    const CALLS: u32 = 200;
    let e = env(b).await;
    let inst = e.acceptor(34).await;
    let mut rs = Vec::new();
    for _ in 0..50 {
        rs.push(e.offer(&inst).await.unwrap());
    }
    let c = e.cases.clone();
    let own = e.keys.bearer(Role::Institution, Some(&inst.id));
    let centre = e.keys.bearer(Role::CenterOfficer, None);
    let get = |bearer: &str| {
        let (mut c, bearer, name) = (c.clone(), bearer.to_owned(), rs[0].name.clone());
        async move {
            let start = Instant::now();
            for _ in 0..CALLS {
                c.get_referral(authed(
                    bearer.clone(),
                    pb::GetReferralRequest { name: name.clone() },
                ))
                .await
                .unwrap();
            }
            start.elapsed() / CALLS
        }
    };
    let list = |bearer: &str| {
        let (mut c, bearer) = (c.clone(), bearer.to_owned());
        async move {
            let start = Instant::now();
            for _ in 0..CALLS / 10 {
                let page = c
                    .list_referrals(authed(bearer.clone(), pb::ListReferralsRequest::default()))
                    .await
                    .unwrap()
                    .into_inner()
                    .referrals;
                assert_eq!(page.len(), 50);
            }
            start.elapsed() / (CALLS / 10)
        }
    };
    // Calls per second of GetReferral from `TASKS` callers at once.
    const TASKS: u32 = 16;
    let concurrent = |bearer: &str| {
        let start = Instant::now();
        let tasks: Vec<_> = (0..TASKS).map(|_| tokio::spawn(get(bearer))).collect();
        async move {
            for t in tasks {
                t.await.unwrap();
            }
            f64::from(TASKS * CALLS) / start.elapsed().as_secs_f64()
        }
    };
    // Warm both paths first.
    get(&own).await;
    get(&centre).await;
    let (get_plain, get_recorded) = (get(&own).await, get(&centre).await);
    let (list_plain, list_recorded) = (list(&own).await, list(&centre).await);
    let (many_plain, many_recorded) = (concurrent(&own).await, concurrent(&centre).await);
    eprintln!(
        "read log cost on {b:?}: GetReferral {get_plain:?} unrecorded, {get_recorded:?} recorded \
         (+{:?}); ListReferrals of 50: {list_plain:?} unrecorded, {list_recorded:?} recorded (+{:?}); \
         {TASKS} callers at once: {many_plain:.0}/s unrecorded, {many_recorded:.0}/s recorded",
        get_recorded.saturating_sub(get_plain),
        list_recorded.saturating_sub(list_plain),
    );
    let (mut recorded, mut token) = (0, String::new());
    loop {
        let page = c
            .clone()
            .list_read_records(e.as_role(
                Role::Auditor,
                read_log_request(&rs[0].name, "test-center_officer", 500, &token),
            ))
            .await
            .unwrap()
            .into_inner();
        recorded += page.records.len() as u32;
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(recorded, (2 + TASKS) * CALLS + CALLS / 10);
}
