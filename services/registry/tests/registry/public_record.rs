//! The public record (domain.md, "The public record"): off by default; when on, licence
//! verification and the change feed without a token, the feed's CSV on the public HTTP
//! port, and the certificate for the institution and the administrator.

use mosharekat_api::registry::v1::public_record_service_client::PublicRecordServiceClient;
use mosharekat_platform::public::PublicArgs;

use super::*;

on_both_databases!(
    the_public_record_is_off_by_default,
    public_methods_without_a_token_when_on,
    a_licence_is_verified_by_its_code_or_the_national_id,
    the_certificate_shows_the_code_and_its_qr_code,
    the_change_feed_tells_grants_suspensions_and_revocations,
    the_change_feed_downloads_as_csv,
    licences_approved_before_codes_get_one_in_the_migration,
);

/// The registry with the public record on (its HTTP port on loopback, any free port).
async fn public_app(b: Backend) -> App {
    let keys = TestKeys::new().unwrap();
    let db = TestDb::new(b).await.expect("a fresh database");
    let mut settings = RunningRegistry::settings(&db.url, &keys.public_key);
    settings.registry.public = PublicArgs::on(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    app_with(keys, db, settings).await
}

fn public_client(app: &App) -> PublicRecordServiceClient<Channel> {
    PublicRecordServiceClient::new(mosharekat_testkit::lazy(&app.reg.uri()))
}

/// The verification code of `l`, from its certificate, as an administrator prints it.
async fn code_of(app: &App, l: &pb::Licence) -> String {
    app.client
        .clone()
        .export_licence_certificate(app.admin(pb::ExportLicenceCertificateRequest {
            name: l.name.clone(),
        }))
        .await
        .expect("a certificate")
        .into_inner()
        .verification_code
}

async fn the_public_record_is_off_by_default(b: Backend) {
    let app = app(b).await;
    assert_eq!(app.reg.public_addr, None, "no public HTTP port");
    let methods = mosharekat_registry::public::methods();
    assert_eq!(
        methods,
        [
            "/mosharekat.registry.v1.PublicRecordService/VerifyLicence",
            "/mosharekat.registry.v1.PublicRecordService/ListLicenceChanges",
        ]
    );
    let ch = mosharekat_testkit::lazy(&app.reg.uri());
    mosharekat_testkit::public_methods_without_a_token(ch.clone(), &app.keys, &methods, false)
        .await;
    // Reflection lists what this registry serves: not the public record, nor the other
    // services of the suite's descriptors.
    assert_eq!(
        mosharekat_testkit::listed_services(ch).await,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
            "mosharekat.common.v1.AuditService",
            "mosharekat.common.v1.NotificationService",
            "mosharekat.registry.v1.CalendarService",
            "mosharekat.registry.v1.RegistryService",
        ]
    );
}

async fn public_methods_without_a_token_when_on(b: Backend) {
    let app = public_app(b).await;
    assert!(app.reg.public_addr.is_some());
    let ch = mosharekat_testkit::lazy(&app.reg.uri());
    let listed = mosharekat_testkit::listed_services(ch.clone()).await;
    assert!(
        listed
            .iter()
            .any(|s| s == "mosharekat.registry.v1.PublicRecordService"),
        "{listed:?}"
    );
    let n = mosharekat_testkit::public_methods_without_a_token(
        ch,
        &app.keys,
        &mosharekat_registry::public::methods(),
        true,
    )
    .await;
    assert_eq!(n, 2);
    // Only those: the rest of the registry still needs a token.
    let e = app
        .client
        .clone()
        .list_institutions(Request::new(pb::ListInstitutionsRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
}

async fn a_licence_is_verified_by_its_code_or_the_national_id(b: Backend) {
    let app = public_app(b).await;
    let inst = app.create(1).await;
    let until = now_secs() + 400 * 86400;
    let lic = app.approve(&app.apply(&inst, until).await).await;
    let code = code_of(&app, &lic).await;
    assert_eq!(code.len(), 11, "{code}: nine symbols in threes");
    let mut public = public_client(&app);
    let verify = |code: &str, national_id: &str| pb::VerifyLicenceRequest {
        code: code.into(),
        national_id: national_id.into(),
    };

    let got = public
        .verify_licence(verify(&code, ""))
        .await
        .expect("verified without a token")
        .into_inner()
        .licences;
    assert_eq!(got.len(), 1);
    let v = &got[0];
    assert!(v.in_force);
    assert_eq!(v.state, pb::LicenceState::Active as i32);
    assert_eq!(v.verification_code, code);
    assert_eq!(v.institution_display_name, inst.display_name);
    assert_eq!(v.activity_areas, lic.activity_areas);
    assert_eq!(v.permitted_actions, lic.permitted_actions);
    assert_eq!(v.province, lic.province);
    assert_eq!(v.valid_until, lic.valid_until);
    let day = mosharekat_calendar::SolarDate::from_instant(
        chrono::DateTime::from_timestamp(lic.valid_until.unwrap().seconds, 0).unwrap(),
    )
    .unwrap();
    assert_eq!(v.valid_until_date, day.to_string());
    assert_eq!(v.valid_until_text, day.to_persian_long());

    // As people type it: lower case, no hyphens, Persian digits.
    let typed =
        mosharekat_persian::digits::to_persian_digits(&code.replace('-', "").to_lowercase());
    let again = public
        .verify_licence(verify(&typed, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.licences[0].verification_code, code);

    // By the institution's national ID: every licence granted, the latest first; one
    // pending is none of the public's business.
    app.apply(&inst, until).await;
    let by_id = public
        .verify_licence(verify("", &inst.national_id))
        .await
        .unwrap()
        .into_inner()
        .licences;
    assert_eq!(by_id.len(), 1);
    assert_eq!(by_id[0].verification_code, code);

    // Suspended: still answered, not in force.
    app.suspend(&lic, "بررسی").await.unwrap();
    let v = public
        .verify_licence(verify(&code, ""))
        .await
        .unwrap()
        .into_inner();
    assert!(!v.licences[0].in_force);
    assert_eq!(v.licences[0].state, pb::LicenceState::Suspended as i32);

    // A mistyped code is told from an unknown one by its check symbol.
    let mut chars: Vec<char> = code.chars().collect();
    chars[0] = if chars[0] == 'A' { 'B' } else { 'A' };
    let mistyped: String = chars.into_iter().collect();
    invalid_field(public.verify_licence(verify(&mistyped, "")).await, "code");
    let unknown = (0u64..)
        .map(mosharekat_registry::public::code::VerificationCode::from_bits)
        .find(|c| c.to_string() != code)
        .unwrap();
    let e = public
        .verify_licence(verify(&unknown.to_string(), ""))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    // An institution that was never licensed, and the questions that are not one.
    let never = app.create(2).await;
    let e = public
        .verify_licence(verify("", &never.national_id))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    invalid_field(public.verify_licence(verify("", "")).await, "code");
    invalid_field(
        public
            .verify_licence(verify(&code, &inst.national_id))
            .await,
        "national_id",
    );
    invalid_field(
        public.verify_licence(verify("", "12345")).await,
        "national_id",
    );
}

async fn the_certificate_shows_the_code_and_its_qr_code(b: Backend) {
    let app = public_app(b).await;
    let inst = app.create(3).await;
    let own = inst.name.trim_start_matches("institutions/").to_owned();
    let pending = app.apply(&inst, now_secs() + 400 * 86400).await;
    let ask = |name: &str| pb::ExportLicenceCertificateRequest { name: name.into() };
    let mut c = app.client.clone();
    let e = c
        .export_licence_certificate(app.as_institution(&own, ask(&pending.name)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(reason(&e), "LICENCE_NOT_IN_FORCE");

    let lic = app.approve(&pending).await;
    let cert = c
        .export_licence_certificate(app.as_institution(&own, ask(&lic.name)))
        .await
        .expect("the institution prints its own")
        .into_inner();
    let html = &cert.html;
    assert!(html.contains("<html lang=\"fa\" dir=\"rtl\">"), "{html}");
    // The name typed with a Latin digit reads in Persian; the code stays as it is typed.
    let persian = mosharekat_persian::digits::to_persian_digits;
    assert!(html.contains(&persian(&inst.display_name)), "{html}");
    assert!(html.contains(&format!("id=\"code\">{}<", cert.verification_code)));
    assert!(
        html.contains("data-latin id=\"code\""),
        "the code marked Latin"
    );
    assert!(
        html.contains("<svg") && html.contains("</svg>"),
        "the QR code inline"
    );
    assert!(!html.contains("<?xml"));
    let until = mosharekat_calendar::SolarDate::from_instant(
        chrono::DateTime::from_timestamp(lic.valid_until.unwrap().seconds, 0).unwrap(),
    )
    .unwrap();
    assert!(
        html.contains(&until.to_persian_long()),
        "Solar Hijri, Persian digits"
    );
    // Nothing of the representatives reaches it.
    assert!(!html.contains(&inst.representatives[0].full_name));
    assert!(!html.contains(&inst.representatives[0].national_code));
    assert!(!html.contains(&inst.address));
    // Another institution's does not exist for it.
    let e = c
        .export_licence_certificate(app.as_institution("someone-else", ask(&lic.name)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

async fn the_change_feed_tells_grants_suspensions_and_revocations(b: Backend) {
    use pb::LicenceChangeKind as K;
    let app = public_app(b).await;
    let inst = app.create(4).await;
    let lic = app
        .approve(&app.apply(&inst, now_secs() + 400 * 86400).await)
        .await;
    app.suspend(&lic, "بازرسی").await.unwrap();
    app.reinstate(&lic).await.unwrap();
    app.revoke(&lic, "تخلف").await.unwrap();
    // An application and a rejection are not part of the record.
    let other = app.apply(&inst, now_secs() + 400 * 86400).await;
    let mut c = app.client.clone();
    c.reject_licence(app.admin(pb::RejectLicenceRequest {
        name: other.name.clone(),
        reason: "ناقص".into(),
        ..Default::default()
    }))
    .await
    .unwrap();
    let code = code_of_any(&app).await;

    let mut public = public_client(&app);
    let page = |token: String| pb::ListLicenceChangesRequest {
        page_size: 3,
        page_token: token,
    };
    let first = public
        .list_licence_changes(page(String::new()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.changes.len(), 3);
    assert!(!first.next_page_token.is_empty());
    let second = public
        .list_licence_changes(page(first.next_page_token.clone()))
        .await
        .unwrap()
        .into_inner();
    assert!(second.next_page_token.is_empty());
    let all: Vec<_> = first.changes.iter().chain(&second.changes).collect();
    let kinds: Vec<i32> = all.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        [K::Granted, K::Suspended, K::Reinstated, K::Revoked].map(|k| k as i32)
    );
    assert!(all.windows(2).all(|w| w[0].sequence < w[1].sequence));
    for ch in &all {
        assert_eq!(ch.institution_display_name, inst.display_name);
        assert_eq!(ch.institution_national_id, inst.national_id);
        assert_eq!(ch.verification_code, code);
        assert_eq!(ch.province, lic.province);
        assert_eq!(ch.activity_areas, lic.activity_areas);
        assert_eq!(ch.date.len(), 10, "{}", ch.date);
    }
    let e = public
        .list_licence_changes(page("not-a-token".into()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
}

/// The code of the first licence granted, whatever its state now: from the feed's grant.
async fn code_of_any(app: &App) -> String {
    public_client(app)
        .list_licence_changes(pb::ListLicenceChangesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .changes
        .into_iter()
        .find(|c| c.kind == pb::LicenceChangeKind::Granted as i32)
        .map(|c| c.verification_code)
        .unwrap_or_default()
}

async fn the_change_feed_downloads_as_csv(b: Backend) {
    let app = public_app(b).await;
    let addr = app.reg.public_addr.unwrap();
    let inst = app.create(5).await;
    let lic = app
        .approve(&app.apply(&inst, now_secs() + 400 * 86400).await)
        .await;
    let code = code_of(&app, &lic).await;
    app.suspend(&lic, "بازرسی").await.unwrap();

    let r = mosharekat_testkit::http_get(addr, "/public/licence-changes.csv?page_size=1").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("text/csv; charset=utf-8"));
    assert_eq!(
        r.header("content-disposition"),
        Some("attachment; filename=\"licence-changes.csv\"")
    );
    assert!(
        r.body.starts_with("\u{feff}".as_bytes()),
        "a UTF-8 BOM first"
    );
    let text = r.text();
    let lines: Vec<&str> = text.trim_start_matches('\u{feff}').split("\r\n").collect();
    assert!(lines[0].starts_with("sequence,kind,"), "{}", lines[0]);
    assert_eq!(
        lines.len(),
        3,
        "header, one row, the last line's end: {text}"
    );
    assert!(lines[1].contains(",GRANTED,"), "{}", lines[1]);
    assert!(lines[1].contains(&inst.display_name));
    assert!(lines[1].contains(&code));
    assert!(lines[1].contains("میانجیگری"));
    let next = r.header("link").expect("the next page linked");
    let query = next
        .trim_start_matches("<?")
        .split('>')
        .next()
        .unwrap()
        .to_owned();
    let r2 =
        mosharekat_testkit::http_get(addr, &format!("/public/licence-changes.csv?{query}")).await;
    assert_eq!(r2.status, 200);
    assert!(r2.text().contains(",SUSPENDED,"), "{}", r2.text());
    assert_eq!(r2.header("link"), None, "the last page");

    let bad =
        mosharekat_testkit::http_get(addr, "/public/licence-changes.csv?page_size=100000").await;
    assert_eq!(bad.status, 400, "{}", bad.text());
}

/// A database as the release before verification codes left it (an approved licence, no
/// codes' table, the migration not recorded): the migration gives the licence its code.
async fn licences_approved_before_codes_get_one_in_the_migration(b: Backend) {
    use mosharekat_platform::db::{Db, DbOptions};
    use sea_orm::ConnectionTrait as _;
    let app = public_app(b).await;
    let inst = app.create(6).await;
    let lic = app
        .approve(&app.apply(&inst, now_secs() + 400 * 86400).await)
        .await;
    let App { keys, db, reg, .. } = app;
    reg.stop().await.unwrap();
    let raw = Db::connect(&db.url, &DbOptions::default()).await.unwrap();
    for s in [
        "DROP TABLE licence_codes",
        "DELETE FROM seaql_migrations WHERE version = 'm20261231_000020_licence_codes'",
    ] {
        raw.conn().execute_unprepared(s).await.unwrap();
    }
    drop(raw);

    let mut settings = RunningRegistry::settings(&db.url, &keys.public_key);
    settings.registry.public = PublicArgs::on(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    let app = app_with(keys, db, settings).await;
    let code = code_of(&app, &lic).await;
    let got = public_client(&app)
        .verify_licence(pb::VerifyLicenceRequest {
            code: code.clone(),
            national_id: String::new(),
        })
        .await
        .expect("the code the migration gave verifies")
        .into_inner();
    assert_eq!(got.licences.len(), 1);
    assert!(got.licences[0].in_force);
    assert_eq!(got.licences[0].verification_code, code);
    // Given in the migration, dated by the approval: the feed names it on the grant.
    let feed = public_client(&app)
        .list_licence_changes(pb::ListLicenceChangesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(feed.changes[0].verification_code, code);
}
