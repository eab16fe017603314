//! The licence certificate looked at in headless Chromium (Debian's `chromium`): a licence
//! approved through the service, its certificate exported and checked as rendered and
//! printed (`mosharekat_testkit::browser`), and its QR code, read back from a screenshot,
//! accepted by the public record's `VerifyLicence` as the licence in force.

use mosharekat_api::registry::v1::public_record_service_client::PublicRecordServiceClient;
use mosharekat_platform::public::PublicArgs;
use mosharekat_testkit::browser::{Expect, Looked, look_at};

use super::*;

on_both_databases!(the_certificate_reads_in_persian_prints_on_a4_and_its_qr_code_verifies,);

async fn the_certificate_reads_in_persian_prints_on_a4_and_its_qr_code_verifies(b: Backend) {
    // The public record on, so that the code read back can be verified as the public would.
    let keys = TestKeys::new().unwrap();
    let db = TestDb::new(b).await.expect("a fresh database");
    let mut settings = RunningRegistry::settings(&db.url, &keys.public_key);
    settings.registry.public = PublicArgs::on(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    let app = app_with(keys, db, settings).await;

    // Latin digits where people typed them (the name, the registration number): the
    // certificate prints them in Persian.
    let inst = app.create(7).await;
    let until = now_secs() + 400 * 86400;
    let lic = app.approve(&app.apply(&inst, until).await).await;
    let own = inst.name.trim_start_matches("institutions/").to_owned();
    let cert = app
        .client
        .clone()
        .export_licence_certificate(app.as_institution(
            &own,
            pb::ExportLicenceCertificateRequest {
                name: lic.name.clone(),
            },
        ))
        .await
        .expect("the institution prints its own")
        .into_inner();
    let until_day = mosharekat_calendar::SolarDate::from_instant(
        chrono::DateTime::from_timestamp(lic.valid_until.unwrap().seconds, 0).unwrap(),
    )
    .unwrap()
    .to_persian_long();

    let html = cert.html;
    let Looked { text, qr_codes, .. } =
        tokio::task::spawn_blocking(move || look_at(&html, &Expect::default()))
            .await
            .unwrap()
            .without_problems();
    // What a reader sees: the name and the number in Persian digits, the day the licence
    // ends in Solar Hijri, the code as printed (Latin: it is typed as it is).
    let persian = mosharekat_persian::digits::to_persian_digits;
    assert!(
        text.contains(&persian(&inst.display_name)),
        "no {} in {text}",
        persian(&inst.display_name)
    );
    assert!(text.contains(&persian(&inst.national_id)), "{text}");
    assert!(text.contains(&until_day), "no {until_day} in {text}");
    assert!(text.contains(&cert.verification_code), "{text}");

    // The one QR code, as a phone reads it off the page, is the printed code, and the public
    // record takes it for this licence, in force.
    assert_eq!(
        qr_codes,
        std::slice::from_ref(&cert.verification_code),
        "{text}"
    );
    let verified = PublicRecordServiceClient::new(mosharekat_testkit::lazy(&app.reg.uri()))
        .verify_licence(pb::VerifyLicenceRequest {
            code: qr_codes[0].clone(),
            national_id: String::new(),
        })
        .await
        .expect("the QR code's text verifies without a token")
        .into_inner()
        .licences;
    assert_eq!(verified.len(), 1, "{verified:?}");
    assert!(verified[0].in_force, "{verified:?}");
    assert_eq!(verified[0].state, pb::LicenceState::Active as i32);
    assert_eq!(verified[0].institution_display_name, inst.display_name);
    assert_eq!(verified[0].valid_until, lic.valid_until);
}
