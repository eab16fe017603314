//! The public record across the suite: the meeting service's register of adopted
//! resolutions (off by default; when on, without a token, over gRPC and as CSV), and the
//! canary test: every personal field of the three services holds a canary, and no public
//! path — every public method of every service, read from the descriptors, and every
//! CSV — gives one back.

use mosharekat_api::meeting::v1::public_record_service_client::PublicRecordServiceClient;
use mosharekat_api::registry::v1::public_record_service_client::PublicRecordServiceClient as RegistryPublicClient;
use mosharekat_platform::public::PublicArgs;

use super::*;

on_both_databases!(
    the_register_is_off_by_default,
    public_methods_without_a_token_when_on,
    the_register_of_adopted_resolutions,
    no_personal_data_on_any_public_path,
);

fn loopback() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 0))
}

/// The three services, the registry and the meeting service with the public record on.
async fn public_env(b: Backend) -> Env {
    let keys = TestKeys::new().unwrap();
    let dbs = vec![
        TestDb::new(b).await.unwrap(),
        TestDb::new(b).await.unwrap(),
        TestDb::new(b).await.unwrap(),
    ];
    let mut rs = RunningRegistry::settings(&dbs[0].url, &keys.public_key);
    rs.registry.public = PublicArgs::on(loopback());
    let registry = RunningRegistry::start(rs).await.unwrap();
    let referral = RunningReferral::start(RunningReferral::settings(
        &dbs[1].url,
        &keys.public_key,
        &keys.private_key,
        &registry.uri(),
    ))
    .await
    .unwrap();
    let mut ms = RunningMeeting::settings(
        &dbs[2].url,
        &keys.public_key,
        &keys.private_key,
        &registry.uri(),
        &referral.uri(),
    );
    ms.meeting.public = PublicArgs::on(loopback());
    let meeting = RunningMeeting::start(ms).await.unwrap();
    Env {
        reg: RegistryServiceClient::new(lazy(&registry.uri())),
        cases: ReferralServiceClient::new(lazy(&referral.uri())),
        wg: MeetingServiceClient::new(lazy(&meeting.uri())),
        keys,
        _dbs: dbs,
        services: (registry, referral, meeting),
    }
}

fn register_client(e: &Env) -> PublicRecordServiceClient<Channel> {
    PublicRecordServiceClient::new(lazy(&e.services.2.uri()))
}

/// A group of a chair, an official and a secretary, its first meeting held with all
/// present and `substitute` representing the official when given; two resolutions
/// recorded: one adopted, the official responsible, with a progress note `note`, one not
/// adopted; the minutes approved with `discussion`. The agenda's item, described by
/// `description`, points at `subject`. Returns the group, the official and the adopted
/// resolution.
struct Held {
    group: pb::WorkingGroup,
    official: pb::Member,
    adopted: pb::Resolution,
}

async fn hold_meeting(
    e: &Env,
    member_name: &str,
    description: &str,
    subject: &str,
    note: &str,
    discussion: &str,
) -> Held {
    let g = e.group().await;
    let seat = |n: u32, seat: pb::Seat, position: pb::Position| {
        let mut req = seat_request(&g, n, seat, position, String::new());
        let m = req.member.as_mut().unwrap();
        m.full_name = format!("{member_name} {n}");
        if seat == pb::Seat::Official {
            m.position_title = "بازرس کل استان اردبیل".into();
        }
        let wg = e.wg.clone();
        let r = e.sec(req);
        async move {
            let mut wg = wg;
            wg.seat_member(r)
                .await
                .unwrap()
                .into_inner()
                .member
                .unwrap()
        }
    };
    let chair = seat(40, pb::Seat::Chair, pb::Position::Unspecified).await;
    let official = seat(41, pb::Seat::Official, pb::Position::ChiefInspector).await;
    let m = e.schedule(&g, "نخستین جلسه").await;
    e.set_agenda(
        &m,
        vec![pb::AgendaItem {
            title: "پرونده".into(),
            description: description.into(),
            subject: subject.into(),
            ..Default::default()
        }],
    )
    .await
    .unwrap();
    e.attend(&m.name, &[&chair, &official]).await.unwrap();
    e.start(&m.name).await;
    let adopted = e
        .resolve(&m.name, &[&chair, &official], &official.name)
        .await
        .unwrap();
    assert!(adopted.adopted);
    let mut wg = e.wg.clone();
    let refused = wg
        .record_resolution(
            e.sec(pb::RecordResolutionRequest {
                name: m.name.clone(),
                text: "پیشنهاد رد شده".into(),
                responsible_body: "اداره کل بهزیستی استان".into(),
                deadline: Some(secs_from_now(30 * 86400)),
                votes: [&chair, &official]
                    .iter()
                    .map(|x| pb::CastVote {
                        member: x.name.clone(),
                        vote: pb::Vote::Against as i32,
                    })
                    .collect(),
                ..Default::default()
            }),
        )
        .await
        .unwrap()
        .into_inner()
        .resolution
        .unwrap();
    assert!(!refused.adopted);
    let adopted = wg
        .report_resolution_progress(e.sec(pb::ReportResolutionProgressRequest {
            name: adopted.name.clone(),
            etag: String::new(),
            progress: 40,
            note: note.into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .resolution
        .unwrap();
    e.approve(&m.name, discussion).await;
    Held {
        group: g,
        official,
        adopted,
    }
}

async fn the_register_is_off_by_default(b: Backend) {
    let e = env(b).await;
    assert_eq!(e.services.2.public_addr, None);
    let methods = mosharekat_meeting::public::methods();
    assert_eq!(
        methods,
        ["/mosharekat.meeting.v1.PublicRecordService/ListPublicResolutions"]
    );
    mosharekat_testkit::public_methods_without_a_token(
        lazy(&e.services.2.uri()),
        &e.keys,
        &methods,
        false,
    )
    .await;
}

async fn public_methods_without_a_token_when_on(b: Backend) {
    let e = public_env(b).await;
    mosharekat_testkit::public_methods_without_a_token(
        lazy(&e.services.2.uri()),
        &e.keys,
        &mosharekat_meeting::public::methods(),
        true,
    )
    .await;
    // The rest of the service still needs a token.
    let err =
        e.wg.clone()
            .list_working_groups(Request::new(pb::ListWorkingGroupsRequest::default()))
            .await
            .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
}

async fn the_register_of_adopted_resolutions(b: Backend) {
    let e = public_env(b).await;
    let held = hold_meeting(&e, "عضو", "", "", "پیشرفت", "مذاکرات").await;
    let mut public = register_client(&e);
    let all = public
        .list_public_resolutions(pb::ListPublicResolutionsRequest::default())
        .await
        .expect("listed without a token")
        .into_inner();
    assert_eq!(
        all.resolutions.len(),
        1,
        "the one not adopted is not listed"
    );
    let r = &all.resolutions[0];
    assert_eq!(r.name, held.adopted.name);
    assert_eq!(r.number, "1-1");
    assert_eq!(r.working_group, held.group.name);
    assert_eq!(r.province, "اردبیل");
    assert_eq!(r.text, held.adopted.text);
    assert_eq!(
        r.responsible, held.official.position_title,
        "the position, not the person"
    );
    assert_eq!(r.deadline, held.adopted.deadline);
    assert_eq!(r.deadline_date.len(), 10, "{}", r.deadline_date);
    assert_eq!(r.progress, 40);
    assert_eq!(r.state, pb::ResolutionState::InProgress as i32);
    assert!(!r.overdue);
    // Of one group; and paging.
    let other = e.group().await;
    let none = public
        .list_public_resolutions(pb::ListPublicResolutionsRequest {
            working_group: other.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(none.resolutions.is_empty());
    let err = public
        .list_public_resolutions(pb::ListPublicResolutionsRequest {
            working_group: "groups/x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    let addr = e.services.2.public_addr.unwrap();
    let csv = mosharekat_testkit::http_get(addr, "/public/resolutions.csv").await;
    assert_eq!(csv.status, 200, "{}", csv.text());
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert_eq!(
        csv.header("content-disposition"),
        Some("attachment; filename=\"resolutions.csv\"")
    );
    assert!(csv.body.starts_with("\u{feff}".as_bytes()));
    let text = csv.text();
    let lines: Vec<&str> = text.trim_start_matches('\u{feff}').split("\r\n").collect();
    assert!(lines[0].starts_with("number,province,"), "{}", lines[0]);
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[1].starts_with("1-1,اردبیل,"), "{}", lines[1]);
    assert!(lines[1].contains(&held.official.position_title));
    assert!(lines[1].contains(",40,IN_PROGRESS,false"), "{}", lines[1]);
    let of_group = mosharekat_testkit::http_get(
        addr,
        &format!("/public/resolutions.csv?working_group={}", other.name),
    )
    .await;
    assert_eq!(
        of_group
            .text()
            .trim_start_matches('\u{feff}')
            .lines()
            .count(),
        1
    );
}

/// The canary: a word no public datum holds. Every personal field below carries it.
const CANARY: &str = "قناری";

async fn no_personal_data_on_any_public_path(b: Backend) {
    let e = public_env(b).await;
    let admin = e.keys.bearer(Role::Admin, None);
    let canary = |what: &str| format!("{CANARY} {what}");
    let (rep_code, party_code) = (code_for(90), code_for(91));
    let (phone, email) = ("09141112233", "qanari-canary@example.org");

    // The registry: an institution whose people, address, phone and e-mail are canaries,
    // licensed, then suspended and reinstated, and another's licence revoked, each for
    // a reason that is a canary (reasons are free text; people get named in them).
    let mut inst = charity(
        "نهاد شفاف".into(),
        legal_id(16, 39_001),
        "9001".into(),
        vec![ActivityArea::Family as i32],
    );
    inst.address = canary("نشانی");
    inst.phone = phone.into();
    inst.email = email.into();
    inst.representatives = vec![reg::Representative {
        full_name: canary("نماینده"),
        national_code: rep_code.clone(),
        role: canary("سمت نماینده"),
        phone: phone.into(),
    }];
    let licensed = register(
        &e.reg,
        &admin,
        inst,
        Some(ardabil_licence(
            vec![ActivityArea::Family as i32],
            &[reg::PermittedAction::AcceptReferrals],
        )),
    )
    .await;
    let licence = licensed.licence_name();
    let mut reg = e.reg.clone();
    reg.suspend_licence(e.admin(reg::SuspendLicenceRequest {
        name: licence.clone(),
        etag: String::new(),
        reason: canary("دلیل تعلیق"),
    }))
    .await
    .unwrap();
    reg.reinstate_licence(e.admin(reg::ReinstateLicenceRequest {
        name: licence.clone(),
        etag: String::new(),
        reason: canary("دلیل رفع تعلیق"),
    }))
    .await
    .unwrap();
    let (_, revoked) = e.institution(92, true).await;
    reg.revoke_licence(e.admin(reg::RevokeLicenceRequest {
        name: revoked,
        etag: String::new(),
        reason: canary("دلیل ابطال"),
    }))
    .await
    .unwrap();

    // The referral service: a case referred to it, its parties and summary canaries.
    let referral = e
        .cases
        .clone()
        .create_referral(authed(
            e.keys.bearer(Role::CenterOfficer, None),
            rf::CreateReferralRequest {
                request_id: String::new(),
                referral: Some(rf::Referral {
                    source: rf::ReferralSource::DisputeResolutionCenter as i32,
                    source_case_number: "1405-9001".into(),
                    kind: rf::ReferralKind::Reconciliation as i32,
                    activity_area: ActivityArea::Family as i32,
                    province: "اردبیل".into(),
                    parties: vec![Party {
                        full_name: canary("طرف اختلاف"),
                        national_code: party_code.clone(),
                        role: PartyRole::Disputant as i32,
                        ..Default::default()
                    }],
                    summary: canary("خلاصهٔ پرونده"),
                    institution: licensed.name().into(),
                    // Who gave the party's agreement is a person too.
                    agreements: mosharekat_testkit::agreements_of(1)
                        .into_iter()
                        .map(|a| rf::PartyAgreement {
                            given_by: canary("وکیل طرف"),
                            ..a
                        })
                        .collect(),
                    ..Default::default()
                }),
            },
        ))
        .await
        .expect("the case referred")
        .into_inner()
        .referral
        .unwrap();

    // The meeting service: members' names (and their national codes), the agenda item
    // about the case, the progress note, the minutes' discussion.
    let held = hold_meeting(
        &e,
        &canary("عضو"),
        &canary("شرح دستور"),
        &referral.name,
        &canary("گزارش پیشرفت"),
        &canary("مذاکرات"),
    )
    .await;

    // The canaries are stored: the authenticated reads give them back (so that their
    // absence below means something).
    let got = reg
        .get_institution(e.admin(reg::GetInstitutionRequest {
            name: licensed.name().into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(format!("{got:?}").contains(CANARY));
    let members = e.members(&held.group, true).await;
    assert!(members.iter().any(|m| m.full_name.contains(CANARY)));
    let member_codes: Vec<String> = members.iter().map(|m| m.national_code.clone()).collect();

    // Every public path, each called with everything it can show.
    let mut seen: Vec<(String, String)> = Vec::new();
    let code = reg
        .export_licence_certificate(e.admin(reg::ExportLicenceCertificateRequest {
            name: licence.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .verification_code;
    let mut registry_public = RegistryPublicClient::new(lazy(&e.services.0.uri()));
    let by_code = registry_public
        .verify_licence(reg::VerifyLicenceRequest {
            code: code.clone(),
            national_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let by_id = registry_public
        .verify_licence(reg::VerifyLicenceRequest {
            code: String::new(),
            national_id: licensed.institution.national_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    seen.push((
        "/mosharekat.registry.v1.PublicRecordService/VerifyLicence".into(),
        format!("{by_code:?}\n{by_id:?}"),
    ));
    let changes = registry_public
        .list_licence_changes(reg::ListLicenceChangesRequest {
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        changes.changes.len() >= 5,
        "grants, suspension, reinstatement, revocation"
    );
    seen.push((
        "/mosharekat.registry.v1.PublicRecordService/ListLicenceChanges".into(),
        format!("{changes:?}"),
    ));
    let resolutions = register_client(&e)
        .list_public_resolutions(pb::ListPublicResolutionsRequest {
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resolutions.resolutions.len(), 1);
    seen.push((
        "/mosharekat.meeting.v1.PublicRecordService/ListPublicResolutions".into(),
        format!("{resolutions:?}"),
    ));
    let csvs = [
        (
            e.services.0.public_addr.unwrap(),
            mosharekat_registry::public::csv::LICENCE_CHANGES_PATH,
        ),
        (
            e.services.2.public_addr.unwrap(),
            mosharekat_meeting::public::RESOLUTIONS_PATH,
        ),
    ];
    for (addr, path) in csvs {
        let r = mosharekat_testkit::http_get(addr, &format!("{path}?page_size=1000")).await;
        assert_eq!(r.status, 200, "{path}");
        seen.push((format!("GET {path}"), r.text()));
    }

    // Every public method of every service in the suite's descriptors has its call
    // above: a public method added without one fails here. And the services let
    // through exactly those.
    let set = <prost_types::FileDescriptorSet as prost::Message>::decode(
        mosharekat_api::FILE_DESCRIPTOR_SET,
    )
    .unwrap();
    let mut public: Vec<String> = set
        .file
        .iter()
        .flat_map(|f| {
            f.service
                .iter()
                .filter(|s| s.name() == mosharekat_platform::public::PUBLIC_SERVICE)
                .flat_map(move |s| {
                    s.method
                        .iter()
                        .map(move |m| format!("/{}.{}/{}", f.package(), s.name(), m.name()))
                })
        })
        .collect();
    public.sort();
    let mut served: Vec<String> = mosharekat_registry::public::methods()
        .into_iter()
        .chain(mosharekat_meeting::public::methods())
        .collect();
    served.sort();
    assert_eq!(
        served, public,
        "the services let through every public method, and only those"
    );
    let mut called: Vec<String> = seen
        .iter()
        .map(|(p, _)| p.clone())
        .filter(|p| p.starts_with('/'))
        .collect();
    called.sort();
    assert_eq!(
        called, public,
        "every public method is called with the canaries"
    );

    // What the public may know is there; what it may not is not.
    let everything: String = seen
        .iter()
        .map(|(_, t)| t.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        everything.contains("نهاد شفاف"),
        "the institution's name is public"
    );
    assert!(everything.contains(&held.adopted.text));
    assert!(everything.contains("بازرس کل استان اردبیل"));
    let mut secrets = vec![
        CANARY.to_owned(),
        rep_code.clone(),
        party_code.clone(),
        "1405-9001".to_owned(),
        phone.to_owned(),
        email.to_owned(),
    ];
    secrets.extend(member_codes.into_iter().filter(|c| !c.is_empty()));
    for (path, text) in &seen {
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "{path} shows {s:?}:\n{text}");
        }
    }
}
