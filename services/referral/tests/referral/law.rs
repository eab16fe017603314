//! "Referrals: more of the law" (`domain.md`): the parties' agreement (art. 82), their
//! choice of institution (art. 5), the extension on request (art. 28), the answer due
//! and its lateness (art. 29), and the judicial district (art. 9). The clock is moved,
//! never slept on.

use chrono::{DateTime, TimeZone, Utc};
use mosharekat_api::common::v1 as common;
use mosharekat_api::common::v1::notification_service_client::NotificationServiceClient;
use mosharekat_platform::change;
use mosharekat_platform::ctx::CallContext;
use mosharekat_referral::names::ReferralId;
use mosharekat_referral::store::Referrals;

use super::*;

on_both_databases!(
    mediation_is_offered_only_with_every_partys_agreement,
    the_institution_asks_for_the_extension_and_the_source_answers,
    an_unanswered_offer_is_flagged_to_the_source_and_may_be_reassigned,
    suggestions_rank_the_referrals_district_first,
);

/// 10:00 in Tehran on Saturday 19 Ordibehesht 1405.
fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 9, 6, 30, 0).unwrap()
}

fn create(r: pb::Referral) -> pb::CreateReferralRequest {
    pb::CreateReferralRequest {
        request_id: String::new(),
        referral: Some(r),
    }
}

/// The notices about `resource`, as an administrator lists them.
async fn notices_about(e: &Env, resource: &str) -> Vec<common::Notification> {
    NotificationServiceClient::new(lazy(&e.referral.as_ref().unwrap().uri()))
        .list_notifications(e.as_role(
            Role::Admin,
            common::ListNotificationsRequest {
                resource: resource.into(),
                page_size: 500,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .notifications
}

/// Those of `ns` sent to the centre (the office that referred the tests' disputes).
fn to_the_centre(ns: &[common::Notification]) -> Vec<&common::Notification> {
    ns.iter()
        .filter(|n| n.recipient_kind == common::RecipientKind::Office as i32)
        .filter(|n| n.recipient_id == "center")
        .collect()
}

fn metadata(s: &tonic::Status, key: &str) -> Option<String> {
    s.get_error_details()
        .error_info()
        .and_then(|i| i.metadata.get(key).cloned())
}

async fn mediation_is_offered_only_with_every_partys_agreement(b: Backend) {
    let e = env(b).await;
    let inst = e.acceptor(91).await;
    let other = e.acceptor(92).await;
    let mut c = e.cases.clone();
    let centre = |msg| e.as_role(Role::CenterOfficer, msg);

    // None recorded: refused, naming the first party without one.
    let mut none = dispute(&inst);
    none.agreements.clear();
    let err = c.create_referral(centre(create(none))).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(reason(&err), "PARTY_AGREEMENT_REQUIRED");
    assert_eq!(metadata(&err, "party_index").as_deref(), Some("0"));
    // One of two: the other is named.
    let mut one = dispute(&inst);
    one.agreements.truncate(1);
    let err = c.create_referral(centre(create(one))).await.unwrap_err();
    assert_eq!(reason(&err), "PARTY_AGREEMENT_REQUIRED");
    assert_eq!(metadata(&err, "party_index").as_deref(), Some("1"));
    assert!(err.message().contains("parties[1]"), "{}", err.message());
    // Mediation too.
    let mut mediation = dispute(&inst);
    mediation.kind = pb::ReferralKind::Mediation as i32;
    mediation.agreements.truncate(1);
    let err = c
        .create_referral(centre(create(mediation)))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "PARTY_AGREEMENT_REQUIRED");
    // An agreement names a party and has its document.
    let mut stray = dispute(&inst);
    stray.agreements[1].party_index = 5;
    invalid_field(
        c.create_referral(centre(create(stray))).await,
        "referral.agreements[1].party_index",
    );
    let mut undocumented = dispute(&inst);
    undocumented.agreements[0].document = None;
    invalid_field(
        c.create_referral(centre(create(undocumented))).await,
        "referral.agreements[0].document",
    );
    // Other kinds need none.
    let mut support = dispute(&inst);
    support.kind = pb::ReferralKind::VictimSupport as i32;
    support.agreements.clear();
    c.create_referral(centre(create(support))).await.unwrap();

    // Every party's, the parties' choice of institution and the district: recorded.
    let mut chosen = dispute(&inst);
    chosen.chosen_by_parties = true;
    chosen.judicial_district = "حوزهٔ قضایی اردبیل".into();
    let r = c
        .create_referral(centre(create(chosen)))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    assert_eq!(r.state, pb::ReferralState::Offered as i32);
    assert_eq!(r.agreements.len(), 2);
    assert_eq!(r.agreements[1].party_index, 1);
    assert!(r.agreements[0].document.is_some());
    assert!(r.chosen_by_parties);
    assert_eq!(r.judicial_district, "حوزهٔ قضایی اردبیل");
    assert!(r.timeline[0].note.contains("chosen by the parties"));
    assert_eq!(
        e.referral(Role::CenterOfficer, &r.name).await.agreements,
        r.agreements
    );

    // Re-offered only with every party's agreement: a declined referral whose
    // agreements were never recorded (as one made before they were) is refused, then
    // re-offered once they are given with the reassignment.
    let declined = c
        .decline_referral(e.as_inst(
            &inst,
            pb::DeclineReferralRequest {
                name: r.name.clone(),
                etag: String::new(),
                reason: "ظرفیت نداریم".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    assert_eq!(declined.state, pb::ReferralState::Declined as i32);
    let running = e.referral.as_ref().unwrap();
    let ctx = CallContext::system("test/before-agreements");
    let id = ReferralId::parse(&r.name, "name").unwrap();
    {
        let checked = change::open(running.db(), &ctx, &Referrals, &id)
            .await
            .unwrap()
            .authorise(|_| true)
            .unwrap()
            .check_etag("")
            .unwrap();
        let mut next = checked.current().clone();
        next.agreements.clear();
        checked.save(next).await.unwrap().commit().await.unwrap();
    }
    let err = e.reassign(&r, &other).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(reason(&err), "PARTY_AGREEMENT_REQUIRED");
    assert_eq!(
        e.referral(Role::CenterOfficer, &r.name).await.state,
        pb::ReferralState::Declined as i32,
        "nothing changed"
    );
    let reoffered = c
        .reassign_referral(e.as_role(
            Role::CenterOfficer,
            pb::ReassignReferralRequest {
                name: r.name.clone(),
                etag: String::new(),
                institution: other.name.clone(),
                agreements: agreements(0..2),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    assert_eq!(reoffered.state, pb::ReferralState::Offered as i32);
    assert_eq!(reoffered.institution, other.name);
    assert_eq!(reoffered.agreements.len(), 2);
}

async fn the_institution_asks_for_the_extension_and_the_source_answers(b: Backend) {
    let e = env(b).await;
    let inst = e.acceptor(93).await;
    let mut c = e.cases.clone();
    let ask = |r: &pb::Referral, why: &str| {
        e.as_inst(
            &inst,
            pb::RequestExtensionRequest {
                name: r.name.clone(),
                etag: String::new(),
                reason: why.into(),
            },
        )
    };
    let refuse = |r: &pb::Referral, why: &str| {
        e.as_role(
            Role::CenterOfficer,
            pb::RefuseExtensionRequest {
                name: r.name.clone(),
                etag: String::new(),
                reason: why.into(),
            },
        )
    };
    let r = e.offer(&inst).await.unwrap();
    // Not before it is accepted.
    let err = c
        .request_extension(ask(&r, "طرفین وقت خواستند"))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "REFERRAL_STATE_CONFLICT");
    let r = e.accept(&inst, &r).await;
    invalid_field(c.request_extension(ask(&r, "  ")).await, "reason");
    // The source does not ask; the institution does not refuse.
    let err = c
        .request_extension(e.as_role(
            Role::CenterOfficer,
            pb::RequestExtensionRequest {
                name: r.name.clone(),
                etag: String::new(),
                reason: "x".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // Nothing asked: nothing to refuse.
    let err = c.refuse_extension(refuse(&r, "نه")).await.unwrap_err();
    assert_eq!(reason(&err), "NO_EXTENSION_REQUESTED");

    let asked = c
        .request_extension(ask(&r, "طرفین برای جلسهٔ دوم وقت خواستند"))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    let x = asked.extension_request.clone().unwrap();
    assert_eq!(x.state, pb::ExtensionRequestState::Pending as i32);
    assert_eq!(x.reason, "طرفین برای جلسهٔ دوم وقت خواستند");
    assert!(x.request_time.is_some() && !x.requested_by.is_empty());
    assert_eq!(asked.state, pb::ReferralState::Accepted as i32);
    assert!(!asked.extended);
    let last = asked.timeline.last().unwrap();
    assert!(last.note.contains("طرفین برای جلسهٔ دوم"), "{last:?}");
    // The source is told.
    let ns = notices_about(&e, &r.name).await;
    let told = to_the_centre(&ns);
    assert_eq!(told.len(), 1, "{ns:?}");
    assert!(told[0].text.contains("درخواست تمدید"), "{}", told[0].text);
    // One request.
    let err = c.request_extension(ask(&r, "باز هم")).await.unwrap_err();
    assert_eq!(reason(&err), "EXTENSION_ALREADY_REQUESTED");

    // Refused, with its reason; the institution is told.
    let refused = c
        .refuse_extension(refuse(&r, "مهلت کافی است"))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    let x = refused.extension_request.unwrap();
    assert_eq!(x.state, pb::ExtensionRequestState::Refused as i32);
    assert_eq!(x.answer_reason, "مهلت کافی است");
    assert!(x.answer_time.is_some());
    assert!(!refused.extended);
    assert!(
        refused
            .timeline
            .last()
            .unwrap()
            .note
            .contains("مهلت کافی است")
    );
    let ns = notices_about(&e, &r.name).await;
    let to_inst: Vec<_> = ns
        .iter()
        .filter(|n| n.recipient_id == inst.id && n.text.contains("پذیرفته نشد"))
        .collect();
    assert_eq!(to_inst.len(), 2, "SMS and e-notice: {ns:?}");
    let err = c.refuse_extension(refuse(&r, "نه")).await.unwrap_err();
    assert_eq!(reason(&err), "NO_EXTENSION_REQUESTED");

    // Granted: the extend path answers the request.
    let r2 = e.offer(&inst).await.unwrap();
    let r2 = e.accept(&inst, &r2).await;
    c.request_extension(ask(&r2, "بیماری یکی از طرفین"))
        .await
        .unwrap();
    let due = r2.due_time.unwrap().seconds;
    let granted = c
        .extend_referral(e.as_role(
            Role::CenterOfficer,
            pb::ExtendReferralRequest {
                name: r2.name.clone(),
                etag: String::new(),
                due_time: Some(prost_types::Timestamp {
                    seconds: due + 30 * 86400,
                    nanos: 0,
                }),
                reason: "درخواست نهاد پذیرفته شد".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    assert!(granted.extended);
    let x = granted.extension_request.unwrap();
    assert_eq!(x.state, pb::ExtensionRequestState::Granted as i32);
    assert_eq!(x.answer_reason, "درخواست نهاد پذیرفته شد");
    // Extended once: no more to ask for.
    let err = c.request_extension(ask(&r2, "دوباره")).await.unwrap_err();
    assert_eq!(reason(&err), "ALREADY_EXTENDED");
}

async fn suggest(e: &Env, district: &str) -> Vec<pb::Suggestion> {
    e.cases
        .clone()
        .suggest_institutions(e.as_role(
            Role::CenterOfficer,
            pb::SuggestInstitutionsRequest {
                activity_area: ActivityArea::Family as i32,
                province: "اردبیل".into(),
                max_results: 10,
                judicial_district: district.into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .suggestions
}

async fn an_unanswered_offer_is_flagged_to_the_source_and_may_be_reassigned(b: Backend) {
    let clock = Clock::manual(start());
    let e = env_with_clock(b, clock.clone()).await;
    let late = e.acceptor(94).await;
    let next = e.acceptor(95).await;
    let timely = e.acceptor(96).await;
    let app = &e.referral.as_ref().unwrap().app;
    let mut c = e.cases.clone();
    let answer_overdue = |c: &mut ReferralServiceClient<Channel>| {
        let req = e.as_role(
            Role::CenterOfficer,
            pb::ListReferralsRequest {
                answer_overdue_only: true,
                ..Default::default()
            },
        );
        let mut c = c.clone();
        async move { c.list_referrals(req).await.unwrap().into_inner().referrals }
    };
    let r = e.offer(&late).await.unwrap();
    assert!(!r.answer_overdue);
    assert!(answer_overdue(&mut c).await.is_empty());
    // Not taken back while the institution may still answer.
    let err = e.reassign(&r, &next).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "ANSWER_NOT_OVERDUE");
    app.fire_reminders().await.unwrap();
    assert!(to_the_centre(&notices_about(&e, &r.name).await).is_empty());

    // The answer time passes unanswered.
    let ends = r.answer.as_ref().unwrap().time.unwrap().seconds;
    clock.set(DateTime::from_timestamp(ends + 1, 0).unwrap());
    app.fire_reminders().await.unwrap();
    let flagged = e.referral(Role::CenterOfficer, &r.name).await;
    assert!(flagged.answer_overdue);
    assert_eq!(flagged.state, pb::ReferralState::Offered as i32);
    let listed = answer_overdue(&mut c).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, r.name);
    assert!(listed[0].answer_overdue);
    // Flagged to the source, once (fired again, nothing more).
    let told = to_the_centre(&notices_about(&e, &r.name).await).len();
    assert_eq!(told, 1);
    app.fire_reminders().await.unwrap();
    assert_eq!(to_the_centre(&notices_about(&e, &r.name).await).len(), 1);
    // Late in answering: last, with the reason.
    let ranked = suggest(&e, "").await;
    assert_eq!(ranked.len(), 3);
    let last = ranked.last().unwrap();
    assert_eq!(last.institution, late.name);
    assert_eq!(last.late_answers, 1);
    assert!(last.reason.contains("late or never"), "{}", last.reason);
    assert!(last.reason.contains("art. 29"), "{}", last.reason);
    assert!(!last.has_unextended_overdue);

    // The source takes it back and offers it to another, though it was never declined.
    let moved = e.reassign(&flagged, &next).await.unwrap();
    assert_eq!(moved.state, pb::ReferralState::Offered as i32);
    assert_eq!(moved.institution, next.name);
    assert!(!moved.answer_overdue, "a new answer time runs");
    assert!(answer_overdue(&mut c).await.is_empty());
    // The lateness stays counted against the first institution.
    let ranked = suggest(&e, "").await;
    let of = |i: &Inst| {
        ranked
            .iter()
            .find(|s| s.institution == i.name)
            .unwrap()
            .clone()
    };
    assert_eq!(of(&late).late_answers, 1);
    assert_eq!(of(&next).late_answers, 0);
    assert_eq!(ranked.last().unwrap().institution, late.name);

    // The next one answers, but late: counted too.
    let ends = moved.answer.as_ref().unwrap().time.unwrap().seconds;
    clock.set(DateTime::from_timestamp(ends + 60, 0).unwrap());
    let accepted = e.accept(&next, &moved).await;
    assert_eq!(accepted.state, pb::ReferralState::Accepted as i32);
    let ranked = suggest(&e, "").await;
    assert_eq!(ranked[0].institution, timely.name, "{ranked:?}");
    assert_eq!(ranked[0].late_answers, 0);
    assert!(ranked[0].reason.starts_with("eligible now"));
    assert!(
        ranked[1..].iter().all(|s| s.late_answers == 1),
        "{ranked:?}"
    );
    // Accepted, the source is not flagged again for it.
    app.fire_reminders().await.unwrap();
    assert_eq!(to_the_centre(&notices_about(&e, &r.name).await).len(), 1);
}

impl Env {
    /// An institution licensed to take referrals, its licence of `district`.
    async fn in_district(&self, n: u32, district: &str) -> Inst {
        let areas = vec![
            ActivityArea::Reconciliation as i32,
            ActivityArea::Women as i32,
            ActivityArea::Family as i32,
        ];
        let mut licence = ardabil_licence(areas.clone(), &[reg::PermittedAction::AcceptReferrals]);
        licence.judicial_district = district.into();
        let r = register(
            &self.reg,
            &self.keys.bearer(Role::RegistryOfficer, None),
            ardabil_institution(
                format!("کانون صلح و سازش {n}"),
                legal_id(15, 20_000 + n),
                n.to_string(),
                areas,
            ),
            Some(licence),
        )
        .await;
        // The registry keeps the district on the licence.
        assert_eq!(r.licence.as_ref().unwrap().judicial_district, district);
        Inst {
            id: r.id().to_owned(),
            licence: r.licence_name(),
            name: r.institution.name,
        }
    }
}

async fn suggestions_rank_the_referrals_district_first(b: Backend) {
    let e = env(b).await;
    let ardabil = "حوزهٔ قضایی اردبیل";
    let meshkin = "حوزهٔ قضایی مشگین‌شهر";
    let a = e.in_district(97, ardabil).await;
    let m = e.in_district(98, meshkin).await;
    // The Ardabil one is busier: without a district, the other ranks first.
    e.offer(&a).await.unwrap();
    let plain = suggest(&e, "").await;
    assert_eq!(plain[0].institution, m.name);
    assert!(plain.iter().all(|s| !s.in_district));
    assert_eq!(plain[0].judicial_district, meshkin);
    // The referral's district first, with the reason.
    let ranked = suggest(&e, ardabil).await;
    assert_eq!(ranked[0].institution, a.name, "{ranked:?}");
    assert!(ranked[0].in_district && !ranked[1].in_district);
    assert_eq!(ranked[0].judicial_district, ardabil);
    assert!(
        ranked[0].reason.contains("judicial district"),
        "{}",
        ranked[0].reason
    );
    let ranked = suggest(&e, meshkin).await;
    assert_eq!(ranked[0].institution, m.name);
    assert!(ranked[0].in_district);
    // A district the licence names in another spelling (ی/ي, ZWNJ) is the same district.
    let ranked = suggest(&e, "حوزه قضايي اردبیل").await;
    assert_eq!(ranked[0].institution, a.name, "{ranked:?}");
}
