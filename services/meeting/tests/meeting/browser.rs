//! The minutes looked at in headless Chromium (Debian's `chromium`): a realistic meeting of
//! the seed's group — the standing report's figures (decimals, a percentage), several agenda
//! items, attendance of every kind, resolutions with mixed votes, Solar Hijri dates — exported
//! by the service and checked as rendered and printed (`mosharekat_testkit::browser`);
//! then the extract of each adopted resolution, the document sent to the body responsible.

use mosharekat_testkit::browser::{Expect, look_at};

use super::*;

on_both_databases!(the_minutes_and_extracts_read_right_to_left_in_persian_and_print_on_a4,);

/// Opens `html` in Chromium; fails the test on any problem found, else gives its text.
async fn looked_at(html: String) -> String {
    tokio::task::spawn_blocking(move || look_at(&html, &Expect::default()))
        .await
        .unwrap()
        .without_problems()
        .text
}

async fn the_minutes_and_extracts_read_right_to_left_in_persian_and_print_on_a4(b: Backend) {
    let e = env(b).await;
    let mut wg = e.wg.clone();
    let (g, members, institutions) = e.seed_group().await;
    let referral = e.refer(&institutions[0].0, "اختلاف خانوادگی").await;
    let m = e.schedule(&g, "جلسهٔ فصلی کارگروه").await;
    let item = |title: &str, description: &str, subject: &str, standing: bool| pb::AgendaItem {
        title: title.into(),
        description: description.into(),
        subject: subject.into(),
        standing_report: standing,
        ..Default::default()
    };
    e.set_agenda(
        &m,
        vec![
            item("گزارش ارجاع‌ها", "گزارش دبیرخانه", "", true),
            item("پروندهٔ ارجاعی", "", &referral.name, false),
            item(
                "نهاد همکار",
                "بررسی عملکرد سال 1403",
                &institutions[1].0,
                false,
            ),
            item("برنامهٔ آموزش میانجی‌ها", "", "", false),
        ],
    )
    .await
    .unwrap();
    let m = wg
        .finalize_agenda(e.sec(pb::FinalizeAgendaRequest {
            name: m.name.clone(),
            etag: String::new(),
        }))
        .await
        .unwrap()
        .into_inner()
        .meeting
        .unwrap();
    // The figures as the referral service gives them: Latin digits, a decimal point.
    assert!(
        m.agenda[0].figures.iter().any(|f| f.value.contains('.')),
        "{:?}",
        m.agenda[0].figures
    );
    let status = |i: usize| match i {
        9 => pb::AttendanceStatus::Represented,
        10 => pb::AttendanceStatus::Excused,
        11 => pb::AttendanceStatus::Absent,
        _ => pb::AttendanceStatus::Present,
    };
    wg.record_attendance(
        e.sec(pb::RecordAttendanceRequest {
            name: m.name.clone(),
            etag: String::new(),
            attendance: (0..members.len())
                .map(|i| pb::Attendance {
                    member: members[i].name.clone(),
                    status: status(i) as i32,
                    substitute_name: if status(i) == pb::AttendanceStatus::Represented {
                        "جانشین عضو".into()
                    } else {
                        String::new()
                    },
                })
                .collect(),
            deputy_chair: String::new(),
        }),
    )
    .await
    .unwrap();
    let m = e.start(&m.name).await;
    let voters = 0..10usize;
    let mut resolutions = Vec::new();
    for (text, against) in [
        ("ایجاد سامانهٔ ارجاع پرونده به نهادهای مردمی", 2usize),
        ("برگزاری دورهٔ آموزشی برای 30 میانجی", 6),
    ] {
        let votes = voters
            .clone()
            .map(|i| pb::CastVote {
                member: members[i].name.clone(),
                vote: if i < against {
                    pb::Vote::Against
                } else if i == 9 {
                    pb::Vote::Abstain
                } else {
                    pb::Vote::For
                } as i32,
            })
            .collect();
        let recorded = wg
            .record_resolution(e.sec(pb::RecordResolutionRequest {
                name: m.name.clone(),
                request_id: String::new(),
                text: text.into(),
                responsible_member: members[4].name.clone(),
                responsible_body: String::new(),
                deadline: Some(secs_from_now(45 * 86400)),
                votes,
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner()
            .resolution
            .unwrap();
        resolutions.push(recorded);
    }
    let m = e
        .approve(
            &m.name,
            "گزارش دبیر خوانده شد.\nاعضا دربارهٔ 2 پرونده بحث کردند.",
        )
        .await;
    let html = e.export(&m.name).await.html;
    let jalali = mosharekat_persian::jalali::format_instant(
        chrono::DateTime::from_timestamp(m.scheduled_time.unwrap().seconds, 0).unwrap(),
    );

    let text = looked_at(html).await;
    // What a reader sees: the Solar Hijri date, the hash as printed, the votes.
    assert!(text.contains(&jalali), "no {jalali} in {text}");
    assert!(text.contains(&m.content_sha256), "{text}");
    assert!(text.contains("موافق ۷، مخالف ۲، ممتنع ۱"), "{text}");

    // Each adopted resolution's extract: its number, the deadline's Persian last day and
    // the hash of the minutes it comes from, as a reader sees them.
    let adopted: Vec<&pb::Resolution> = resolutions
        .iter()
        .filter(|r| r.state() != pb::ResolutionState::NotAdopted)
        .collect();
    assert_eq!(adopted.len(), 1, "{resolutions:?}");
    for r in adopted {
        let x = wg
            .export_resolution_extract(e.sec(pb::ExportResolutionExtractRequest {
                name: r.name.clone(),
            }))
            .await
            .unwrap()
            .into_inner();
        let last_day = r.legal_deadline.as_ref().unwrap().last_day_persian.clone();
        let text = looked_at(x.html).await;
        for want in [&x.display_number, &last_day, &m.content_sha256] {
            assert!(text.contains(want.as_str()), "no {want} in {text}");
        }
    }
}
