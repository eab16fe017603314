//! Notifications: written with the change that causes them (and not when it rolls back),
//! in Persian with Solar Hijri dates and within the SMS content rules; reminders of the
//! answer and due times firing at their instants as the manual clock moves (never slept),
//! each once, and cancelled when the case no longer runs; a failed notice is the
//! centre's work.

use chrono::{DateTime, TimeZone, Utc};
use mosharekat_api::common::v1 as common;
use mosharekat_api::common::v1::notification_service_client::NotificationServiceClient;
use mosharekat_notify::Template;
use mosharekat_notify::content::check_sms;
use mosharekat_platform::change;
use mosharekat_platform::ctx::CallContext;
use mosharekat_referral::notices::Notify;
use mosharekat_referral::store::Referrals;

use super::*;

on_both_databases!(
    changes_notify_the_institution_in_their_transaction,
    reminders_fire_at_their_instants_once_and_stop_with_the_case,
    a_failed_notice_is_the_centres_work,
);

/// 10:00 in Tehran on Saturday 19 Ordibehesht 1405.
fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 9, 6, 30, 0).unwrap()
}

fn notices(e: &Env) -> NotificationServiceClient<Channel> {
    NotificationServiceClient::new(lazy(&e.referral.as_ref().unwrap().uri()))
}

/// The notices about `resource` (all of them when empty), as an administrator lists them.
async fn listed(e: &Env, resource: &str) -> Vec<common::Notification> {
    notices(e)
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

fn with_text<'a>(ns: &'a [common::Notification], words: &str) -> Vec<&'a common::Notification> {
    ns.iter().filter(|n| n.text.contains(words)).collect()
}

/// Every SMS keeps the content rules; each notice went out on both gateways.
fn content_rules_hold(ns: &[common::Notification]) {
    for n in ns {
        if n.channel == common::NotificationChannel::Sms as i32 {
            check_sms(&n.text, &n.reference).unwrap_or_else(|e| panic!("{e}: {}", n.text));
        }
        assert!(!n.text.chars().any(|c| c.is_ascii_digit()), "{}", n.text);
        assert!(n.reference.starts_with("ارجاع ") || n.reference.starts_with("پرونده "));
    }
}

async fn changes_notify_the_institution_in_their_transaction(b: Backend) {
    let e = env_with_clock(b, Clock::manual(start())).await;
    let inst = e
        .institution(71, &[reg::PermittedAction::AcceptReferrals])
        .await;
    let mut c = e.cases.clone();
    let r = e.offer(&inst).await.unwrap();
    let ns = listed(&e, &r.name).await;
    // Offered: on SMS and e-notice, to the institution, with the answer's last day.
    assert_eq!(ns.len(), 2, "{ns:?}");
    assert_eq!(
        ns[0].text,
        format!(
            "همکار گرامی، ارجاع {} به شما پیشنهاد شد؛ مهلت پاسخ تا پایان ۲۶ اردیبهشت ۱۴۰۵.",
            mosharekat_persian::digits::to_persian_digits(&r.reference.to_string())
        )
    );
    assert_eq!(ns[0].recipient_id, inst.id);
    assert_eq!(ns[0].office, "center");
    let channels: Vec<i32> = ns.iter().map(|n| n.channel).collect();
    assert!(channels.contains(&(common::NotificationChannel::Sms as i32)));
    assert!(channels.contains(&(common::NotificationChannel::ENotice as i32)));
    // The institution lists its own.
    let own = notices(&e)
        .list_notifications(e.as_inst(&inst, common::ListNotificationsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .notifications;
    assert_eq!(own.len(), 2);

    // A change rolled back after its notices were written notifies nobody: the change
    // path by hand, its notices written in step 6, then dropped before the commit.
    let running = e.referral.as_ref().unwrap();
    let ctx = CallContext::system("test/rollback");
    let id = mosharekat_referral::names::ReferralId::parse(&r.name, "name").unwrap();
    let notify = Notify::default();
    {
        let checked = change::open(running.db(), &ctx, &Referrals, &id)
            .await
            .unwrap()
            .authorise(|_| true)
            .unwrap()
            .check_etag("")
            .unwrap();
        let next = checked.current().clone();
        let saved = checked.save(next).await.unwrap();
        notify
            .referral(
                saved.txn(),
                &ctx,
                &saved.saved().value,
                Template::ReferralWithdrawn,
                &[],
            )
            .await
            .unwrap();
        // dropped: rolled back
    }
    assert_eq!(
        listed(&e, &r.name).await.len(),
        2,
        "rolled back: nothing more"
    );

    // Withdrawn: told, with no date.
    c.withdraw_referral(e.as_role(
        Role::CenterOfficer,
        pb::WithdrawReferralRequest {
            name: r.name.clone(),
            etag: String::new(),
            reason: "سازش پیش از جلسه".into(),
        },
    ))
    .await
    .unwrap();
    let ns = listed(&e, &r.name).await;
    assert_eq!(with_text(&ns, "پس گرفته شد").len(), 2);

    // Extended: the new last day in Solar Hijri.
    let r = e.offer(&inst).await.unwrap();
    let r = c
        .accept_referral(e.as_inst(
            &inst,
            pb::AcceptReferralRequest {
                name: r.name.clone(),
                etag: r.etag.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    // From 17 Mordad 1405 (its last day), 30 days: Tuesday 16 Shahrivar.
    let requested = r.due_time.unwrap().seconds + 30 * 86400;
    let ext = c
        .extend_referral(e.as_role(
            Role::CenterOfficer,
            pb::ExtendReferralRequest {
                name: r.name.clone(),
                etag: String::new(),
                due_time: Some(prost_types::Timestamp {
                    seconds: requested,
                    nanos: 0,
                }),
                reason: "درخواست طرفین".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    assert_eq!(ext.due.as_ref().unwrap().last_day, "1405/06/16");
    let ns = listed(&e, &r.name).await;
    let extended = with_text(&ns, "تمدید شد");
    assert_eq!(extended.len(), 2, "{ns:?}");
    assert!(
        extended[0].text.contains("۱۶ شهریور ۱۴۰۵"),
        "{}",
        extended[0].text
    );
    // More than 90 days past the current last day is refused, naming the field.
    let r2 = e.offer(&inst).await.unwrap();
    let r2 = c
        .accept_referral(e.as_inst(
            &inst,
            pb::AcceptReferralRequest {
                name: r2.name.clone(),
                etag: r2.etag.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    let err = c
        .extend_referral(e.as_role(
            Role::CenterOfficer,
            pb::ExtendReferralRequest {
                name: r2.name.clone(),
                etag: String::new(),
                due_time: Some(prost_types::Timestamp {
                    seconds: r2.due_time.unwrap().seconds + 91 * 86400,
                    nanos: 0,
                }),
                reason: "درخواست طرفین".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(fields(&err), ["due_time"]);

    // Recalled on licence loss, by the event consumer's transaction.
    e.revoke(&inst).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ns = listed(&e, &r2.name).await;
        if with_text(&ns, "بازخوانده شد").len() == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "no recall notice: {ns:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Filings: registered, to the filing institution.
    let filer = e
        .institution(72, &[reg::PermittedAction::FileComplaint])
        .await;
    let f = submitted_complaint(&e, &filer).await;
    let clerk = bearer_for(&e, Role::JudicialOfficer, &filer);
    c.register_filing(authed(
        clerk,
        pb::RegisterFilingRequest {
            name: f.name.clone(),
            etag: String::new(),
            case_number: "۴۴۱۲".into(),
        },
    ))
    .await
    .unwrap();
    let ns = listed(&e, &f.name).await;
    assert_eq!(ns.len(), 2, "{ns:?}");
    assert_eq!(ns[0].recipient_id, filer.id);
    assert!(ns[0].text.contains("ثبت شد"), "{}", ns[0].text);
    assert!(!ns[0].text.contains("۴۴۱۲"), "no case number in an SMS");
    content_rules_hold(&listed(&e, "").await);
}

async fn reminders_fire_at_their_instants_once_and_stop_with_the_case(b: Backend) {
    let clock = Clock::manual(start());
    let e = env_with_clock(b, clock.clone()).await;
    let inst = e
        .institution(73, &[reg::PermittedAction::AcceptReferrals])
        .await;
    let app = &e.referral.as_ref().unwrap().app;
    let offered = e.offer(&inst).await.unwrap();
    let accepted = e.offer(&inst).await.unwrap();
    let accepted = e
        .cases
        .clone()
        .accept_referral(e.as_inst(
            &inst,
            pb::AcceptReferralRequest {
                name: accepted.name.clone(),
                etag: accepted.etag.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    let withdrawn = e.offer(&inst).await.unwrap();
    e.cases
        .clone()
        .withdraw_referral(e.as_role(
            Role::CenterOfficer,
            pb::WithdrawReferralRequest {
                name: withdrawn.name.clone(),
                etag: String::new(),
                reason: "اشتباه".into(),
            },
        ))
        .await
        .unwrap();
    let at = |y, m, d, h, min| Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap();
    let approaching = "به سر می‌رسد";
    let passed = "به سر رسید";
    // The answer ends Saturday 26 Ordibehesht: its 1-day reminder is at 08:00 Tehran on
    // the 25th (04:30 UTC, 15 May); the 7-day one had come already when it was offered.
    clock.set(at(2026, 5, 15, 4, 29));
    app.fire_reminders().await.unwrap();
    assert!(with_text(&listed(&e, &offered.name).await, approaching).is_empty());
    clock.set(at(2026, 5, 15, 4, 30));
    app.fire_reminders().await.unwrap();
    let ns = listed(&e, &offered.name).await;
    let reminded = with_text(&ns, approaching);
    assert_eq!(reminded.len(), 2, "{ns:?}");
    assert_eq!(
        reminded[0].text,
        format!(
            "همکار گرامی، مهلت پاسخ به ارجاع {} پایان ۲۶ اردیبهشت ۱۴۰۵ به سر می‌رسد.",
            mosharekat_persian::digits::to_persian_digits(&offered.reference.to_string())
        )
    );
    // Each fires once.
    app.fire_reminders().await.unwrap();
    assert_eq!(
        with_text(&listed(&e, &offered.name).await, approaching).len(),
        2
    );
    // Passed: the first instant after 26 Ordibehesht ends (20:29:59.999999 UTC).
    clock.set(
        DateTime::from_timestamp_micros(at(2026, 5, 16, 20, 29).timestamp_micros() + 59_999_999)
            .unwrap(),
    );
    app.fire_reminders().await.unwrap();
    assert!(with_text(&listed(&e, &offered.name).await, passed).is_empty());
    clock.advance(chrono::Duration::microseconds(1));
    app.fire_reminders().await.unwrap();
    let ns = listed(&e, &offered.name).await;
    let gone = with_text(&ns, passed);
    // To the institution on both gateways, and flagged to the source (the centre) on the
    // e-notice system.
    assert_eq!(gone.len(), 3, "{ns:?}");
    let to_centre: Vec<_> = gone
        .iter()
        .filter(|n| n.recipient_kind == common::RecipientKind::Office as i32)
        .collect();
    assert_eq!(to_centre.len(), 1, "{gone:?}");
    assert_eq!(to_centre[0].recipient_id, "center");
    assert_eq!(
        to_centre[0].channel,
        common::NotificationChannel::ENotice as i32
    );
    // The accepted one answered: no answer reminders; its due time (17 Mordad) reminds
    // 7 days before, at 08:00 on 10 Mordad (1 August 2026, 04:30 UTC).
    let ns = listed(&e, &accepted.name).await;
    assert!(with_text(&ns, approaching).is_empty(), "{ns:?}");
    clock.set(at(2026, 8, 1, 4, 29));
    app.fire_reminders().await.unwrap();
    assert!(with_text(&listed(&e, &accepted.name).await, approaching).is_empty());
    clock.set(at(2026, 8, 1, 4, 30));
    app.fire_reminders().await.unwrap();
    let due = with_text(&listed(&e, &accepted.name).await, "مهلت انجام").len();
    assert_eq!(due, 2, "the 7-day reminder of the due time");
    // Moved by a closure published late, the remaining reminders follow the new last day:
    // 17 Mordad closed, so 18 Mordad; 1 day before is 08:00 on 17 Mordad (8 August).
    let p = mosharekat_calendar::Publication::Closure(mosharekat_calendar::Closure {
        scope: mosharekat_calendar::Scope::Nationwide,
        first_day: "1405/05/17".parse().unwrap(),
        last_day: "1405/05/17".parse().unwrap(),
        reason: "کمبود سوخت".into(),
        published_by: "قوه قضاییه".into(),
        published_at: Utc::now(),
    });
    assert_eq!(app.apply_publication(&p).await.unwrap(), 1);
    let ns = listed(&e, &accepted.name).await;
    let moved = with_text(&ns, "منتقل شد");
    assert_eq!(moved.len(), 2, "{ns:?}");
    assert!(moved[0].text.contains("۱۸ مرداد ۱۴۰۵"), "{}", moved[0].text);
    clock.set(at(2026, 8, 7, 4, 30));
    app.fire_reminders().await.unwrap();
    assert_eq!(
        with_text(&listed(&e, &accepted.name).await, approaching).len(),
        2
    );
    clock.set(at(2026, 8, 8, 4, 30));
    app.fire_reminders().await.unwrap();
    let ns = listed(&e, &accepted.name).await;
    assert_eq!(with_text(&ns, approaching).len(), 4, "{ns:?}");
    assert!(with_text(&ns, "۱۸ مرداد").len() >= 4);
    // Withdrawn before any: nothing ever reminds of it.
    clock.set(at(2026, 12, 1, 0, 0));
    app.fire_reminders().await.unwrap();
    let ns = listed(&e, &withdrawn.name).await;
    assert_eq!(ns.len(), 4, "offered and withdrawn only: {ns:?}");
    assert!(
        with_text(&ns, "مهلت").len() == 2,
        "only the offer names a deadline"
    );
    content_rules_hold(&listed(&e, "").await);
}

async fn a_failed_notice_is_the_centres_work(b: Backend) {
    let e = env_with_clock(b, Clock::manual(start())).await;
    let inst = e
        .institution(74, &[reg::PermittedAction::AcceptReferrals])
        .await;
    let r = e.offer(&inst).await.unwrap();
    let sms = listed(&e, &r.name)
        .await
        .into_iter()
        .find(|n| n.channel == common::NotificationChannel::Sms as i32)
        .unwrap();
    // The SMS gateway could not deliver it after its own retries.
    notices(&e)
        .acknowledge_notification(e.as_role(
            Role::Service,
            common::AcknowledgeNotificationRequest {
                name: sms.name.clone(),
                state: common::NotificationState::Failed as i32,
                failure_reason: "شماره در دسترس نیست".into(),
            },
        ))
        .await
        .unwrap();
    let work = notices(&e)
        .list_notifications(e.as_role(
            Role::CenterOfficer,
            common::ListNotificationsRequest {
                state: common::NotificationState::Failed as i32,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .notifications;
    assert_eq!(work.len(), 1, "{work:?}");
    assert_eq!(work[0].name, sms.name);
    assert_eq!(work[0].resource, r.name);
    assert_eq!(work[0].failure_reason, "شماره در دسترس نیست");
    // Not another institution's to see.
    let other = e
        .institution(75, &[reg::PermittedAction::AcceptReferrals])
        .await;
    let theirs = notices(&e)
        .list_notifications(e.as_inst(&other, common::ListNotificationsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .notifications;
    assert!(theirs.is_empty());
}
