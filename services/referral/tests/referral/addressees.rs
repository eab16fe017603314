//! Notices addressed properly: to the institution by the display name the registry gave
//! (asked when the case came to it) and, where it gave an address, by e-mail too; and
//! each the work of the office whose change caused it (a judicial officer's authority).

use chrono::{DateTime, TimeZone, Utc};
use mosharekat_api::common::v1 as common;
use mosharekat_api::common::v1::notification_service_client::NotificationServiceClient;
use mosharekat_notify::content::{check_no_national_code, check_sms};

use super::*;

on_both_databases!(
    notices_name_the_institution_and_e_mail_it,
    a_judicial_officers_change_is_their_authoritys_work,
);

/// 10:00 in Tehran on Saturday 19 Ordibehesht 1405.
fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 9, 6, 30, 0).unwrap()
}

const NAME: &str = "کانون صلح و سازش مهر";
const EMAIL: &str = "info@mehr.example";

fn notices(e: &Env) -> NotificationServiceClient<Channel> {
    NotificationServiceClient::new(lazy(&e.referral.as_ref().unwrap().uri()))
}

async fn listed_as(
    e: &Env,
    bearer: String,
    req: common::ListNotificationsRequest,
) -> Vec<common::Notification> {
    notices(e)
        .list_notifications(authed(bearer, req))
        .await
        .unwrap()
        .into_inner()
        .notifications
}

/// The notices about `resource`, as an administrator lists them.
async fn about(e: &Env, resource: &str) -> Vec<common::Notification> {
    listed_as(
        e,
        e.keys.bearer(Role::Admin, None),
        common::ListNotificationsRequest {
            resource: resource.into(),
            page_size: 500,
            ..Default::default()
        },
    )
    .await
}

fn on(
    ns: &[common::Notification],
    channel: common::NotificationChannel,
) -> Vec<&common::Notification> {
    ns.iter().filter(|n| n.channel == channel as i32).collect()
}

impl Env {
    /// An institution with a name an SMS may carry and an e-mail address, licensed to
    /// file complaints and to take referrals.
    async fn named(&self, n: u32) -> Inst {
        let areas = vec![
            ActivityArea::Reconciliation as i32,
            ActivityArea::Women as i32,
            ActivityArea::Family as i32,
        ];
        let mut institution = ardabil_institution(
            NAME.into(),
            legal_id(15, 20_000 + n),
            n.to_string(),
            areas.clone(),
        );
        institution.email = EMAIL.into();
        let r = register(
            &self.reg,
            &self.keys.bearer(Role::RegistryOfficer, None),
            institution,
            Some(ardabil_licence(
                areas,
                &[
                    reg::PermittedAction::FileComplaint,
                    reg::PermittedAction::AcceptReferrals,
                ],
            )),
        )
        .await;
        Inst {
            id: r.id().to_owned(),
            licence: r.licence_name(),
            name: r.institution.name,
        }
    }
}

async fn notices_name_the_institution_and_e_mail_it(b: Backend) {
    let clock = Clock::manual(start());
    let e = env_with_clock(b, clock.clone()).await;
    let inst = e.named(81).await;
    let r = e.offer(&inst).await.unwrap();
    let ns = about(&e, &r.name).await;
    assert_eq!(ns.len(), 3, "SMS, e-notice and e-mail: {ns:?}");
    let sms = on(&ns, common::NotificationChannel::Sms);
    assert_eq!(sms.len(), 1);
    assert_eq!(
        sms[0].text,
        format!(
            "{NAME} گرامی، ارجاع {} به شما پیشنهاد شد؛ مهلت پاسخ تا پایان ۲۶ اردیبهشت ۱۴۰۵.",
            mosharekat_persian::digits::to_persian_digits(&r.reference.to_string())
        )
    );
    check_sms(&sms[0].text, &sms[0].reference).unwrap();
    assert_eq!(sms[0].recipient_name, NAME);
    assert_eq!(sms[0].address, "", "the gateway knows the number");
    let mail = on(&ns, common::NotificationChannel::Email);
    assert_eq!(mail.len(), 1, "{ns:?}");
    assert_eq!(mail[0].address, EMAIL);
    assert_eq!(mail[0].recipient_id, inst.id);
    assert!(mail[0].text.starts_with(NAME), "{}", mail[0].text);
    for n in &ns {
        // The parties' national codes are on the referral, never in a notice.
        check_no_national_code(&n.text).unwrap();
        check_no_national_code(&n.subject).unwrap();
    }

    // The answer time's reminders are e-mailed too: 1 day before is 08:00 on
    // 25 Ordibehesht (15 May, 04:30 UTC).
    let app = &e.referral.as_ref().unwrap().app;
    clock.set(Utc.with_ymd_and_hms(2026, 5, 15, 4, 30, 0).unwrap());
    app.fire_reminders().await.unwrap();
    let ns = about(&e, &r.name).await;
    let reminded: Vec<_> = ns
        .iter()
        .filter(|n| n.text.contains("به سر می‌رسد"))
        .collect();
    assert_eq!(reminded.len(), 3, "{ns:?}");
    assert!(reminded.iter().all(|n| n.text.starts_with(NAME)));
    assert_eq!(
        reminded
            .iter()
            .filter(|n| n.channel == common::NotificationChannel::Email as i32)
            .map(|n| n.address.as_str())
            .collect::<Vec<_>>(),
        [EMAIL]
    );

    // The filing institution likewise, asked when it submits.
    let f = submitted_complaint(&e, &inst).await;
    e.cases
        .clone()
        .register_filing(authed(
            bearer_for(&e, Role::JudicialOfficer, &inst),
            pb::RegisterFilingRequest {
                name: f.name.clone(),
                etag: String::new(),
                case_number: "۴۴۱۳".into(),
            },
        ))
        .await
        .unwrap();
    let ns = about(&e, &f.name).await;
    assert_eq!(ns.len(), 3, "{ns:?}");
    assert!(ns.iter().all(|n| n.text.starts_with(NAME)), "{ns:?}");
    assert_eq!(
        on(&ns, common::NotificationChannel::Email)[0].address,
        EMAIL
    );
    check_no_national_code(&on(&ns, common::NotificationChannel::Email)[0].text).unwrap();

    // An institution without an address, whose name an SMS may not carry (it has
    // digits): the gateways only, to «همکار».
    let plain = e.acceptor(82).await;
    let r = e.offer(&plain).await.unwrap();
    let ns = about(&e, &r.name).await;
    assert_eq!(ns.len(), 2, "{ns:?}");
    assert!(on(&ns, common::NotificationChannel::Email).is_empty());
    assert!(
        ns.iter().all(|n| n.text.starts_with("همکار گرامی")),
        "{ns:?}"
    );

    // Declined, and reassigned to the named one: addressed by its name from then on.
    e.cases
        .clone()
        .decline_referral(e.as_inst(
            &plain,
            pb::DeclineReferralRequest {
                name: r.name.clone(),
                etag: String::new(),
                reason: "ظرفیت تکمیل است".into(),
            },
        ))
        .await
        .unwrap();
    let moved = e.reassign(&r, &inst).await.unwrap();
    let ns = about(&e, &moved.name).await;
    let offers: Vec<_> = ns
        .iter()
        .filter(|n| n.text.contains("پیشنهاد شد") && n.recipient_id == inst.id)
        .collect();
    assert_eq!(offers.len(), 3, "{ns:?}");
    assert!(offers.iter().all(|n| n.text.starts_with(NAME)));
}

async fn a_judicial_officers_change_is_their_authoritys_work(b: Backend) {
    let e = env_with_clock(b, Clock::manual(start())).await;
    let inst = e.acceptor(84).await;
    let officer = bearer_for(&e, Role::JudicialOfficer, &inst);
    let mut referral = dispute(&inst);
    referral.source = pb::ReferralSource::Prosecutor as i32;
    let r = e
        .cases
        .clone()
        .create_referral(authed(
            officer.clone(),
            pb::CreateReferralRequest {
                request_id: String::new(),
                referral: Some(referral),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    let ns = about(&e, &r.name).await;
    assert_eq!(ns.len(), 2, "{ns:?}");
    let office = format!("authorities/{AUTHORITY}");
    assert!(ns.iter().all(|n| n.office == office), "{ns:?}");
    // A centre officer's change is the centre's.
    let centre = e.offer(&inst).await.unwrap();
    assert!(
        about(&e, &centre.name)
            .await
            .iter()
            .all(|n| n.office == "center")
    );

    // The SMS fails after the gateway's retries: work for that authority only.
    let sms = on(&ns, common::NotificationChannel::Sms)[0].name.clone();
    notices(&e)
        .acknowledge_notification(e.as_role(
            Role::Service,
            common::AcknowledgeNotificationRequest {
                name: sms.clone(),
                state: common::NotificationState::Failed as i32,
                failure_reason: "شماره در دسترس نیست".into(),
            },
        ))
        .await
        .unwrap();
    let failed = || common::ListNotificationsRequest {
        state: common::NotificationState::Failed as i32,
        ..Default::default()
    };
    let work = listed_as(&e, officer, failed()).await;
    assert_eq!(
        work.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(),
        [sms.as_str()]
    );
    assert!(
        listed_as(&e, e.keys.bearer(Role::CenterOfficer, None), failed())
            .await
            .is_empty(),
        "not the centre's"
    );
    let stranger = e.keys.bearer_with(Role::JudicialOfficer, |t| {
        t.authority = Some("دادگاه تهران".into())
    });
    assert!(
        listed_as(&e, stranger, failed()).await.is_empty(),
        "not another authority's"
    );
}
