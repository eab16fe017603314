//! The minutes (صورتجلسه) as a printable right-to-left Persian HTML document, with Solar
//! Hijri dates in Tehran time, on the suite's document kit (`mosharekat_document`: the head
//! and style, the embedded font, A4, Persian numerals in the text).

use std::fmt::Write;

use chrono::DateTime;
use mosharekat_api::meeting::v1 as pb;
use mosharekat_persian::digits::{to_persian_digits, to_persian_number};
use mosharekat_persian::jalali::format_instant;
use mosharekat_platform::db::from_timestamp;

pub use mosharekat_document::escape;

fn when(t: &Option<prost_types::Timestamp>) -> String {
    t.as_ref()
        .and_then(from_timestamp)
        .and_then(DateTime::from_timestamp_micros)
        .map(format_instant)
        .unwrap_or_else(|| "—".into())
}

fn attendance_label(s: i32) -> &'static str {
    match pb::AttendanceStatus::try_from(s) {
        Ok(pb::AttendanceStatus::Present) => "حاضر",
        Ok(pb::AttendanceStatus::Absent) => "غایب",
        Ok(pb::AttendanceStatus::Excused) => "غیبت موجه",
        Ok(pb::AttendanceStatus::Represented) => "با نماینده",
        _ => "نامشخص",
    }
}

fn seat_label(s: i32) -> &'static str {
    match pb::Seat::try_from(s) {
        Ok(pb::Seat::Chair) => "رئیس",
        Ok(pb::Seat::Official) => "عضو حقوقی",
        Ok(pb::Seat::InstitutionRepresentative) => "نمایندهٔ نهاد مردمی",
        Ok(pb::Seat::Secretary) => "دبیر",
        _ => "",
    }
}

fn vote_label(v: i32) -> &'static str {
    match pb::Vote::try_from(v) {
        Ok(pb::Vote::For) => "موافق",
        Ok(pb::Vote::Against) => "مخالف",
        Ok(pb::Vote::Abstain) => "ممتنع",
        _ => "",
    }
}

/// `n` in Persian digits.
fn n(x: i64) -> String {
    to_persian_digits(&x.to_string())
}

/// The minutes of `m` in working group `g`; `members` names the people.
pub fn render(g: &pb::WorkingGroup, m: &pb::Meeting, members: &[pb::Member]) -> String {
    let who = |name: &str| {
        members
            .iter()
            .find(|x| x.name == name)
            .map(|x| x.full_name.clone())
            .unwrap_or_else(|| name.to_owned())
    };
    let mut h = String::new();
    let _ = write!(
        h,
        "<header>\n<h1>{}</h1>\n<h2>صورتجلسهٔ جلسهٔ شمارهٔ {}</h2>\n<p>استان: {} — موضوع: {}</p>\n<p>زمان: {} — مکان: {}</p>\n",
        escape(&g.title),
        n(i64::from(m.number)),
        escape(&g.province),
        escape(&m.title),
        when(&m.scheduled_time),
        escape(&m.place),
    );
    if m.state != pb::MeetingState::Closed as i32 {
        h.push_str("<p><strong>پیش‌نویس: صورتجلسه هنوز تأیید نشده است.</strong></p>\n");
    }
    h.push_str("</header>\n<section id=\"attendance\">\n<h3>حاضران و غایبان</h3>\n<table>\n<tr><th>نام</th><th>سمت</th><th>وضعیت</th></tr>\n");
    for a in &m.attendance {
        let member = members.iter().find(|x| x.name == a.member);
        let role = member
            .map(|x| {
                if x.position_title.is_empty() {
                    seat_label(x.seat).to_owned()
                } else {
                    x.position_title.clone()
                }
            })
            .unwrap_or_default();
        let status = if a.status == pb::AttendanceStatus::Represented as i32 {
            format!(
                "{} ({})",
                attendance_label(a.status),
                escape(&a.substitute_name)
            )
        } else {
            attendance_label(a.status).to_owned()
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&who(&a.member)),
            escape(&role),
            status
        );
    }
    h.push_str("</table>\n");
    if let Some(q) = &m.quorum {
        let _ = writeln!(
            h,
            "<p>حد نصاب: {} نفر از {} عضو دارای رأی حاضر بودند (حد نصاب {} نفر) — {}.</p>",
            n(i64::from(q.voting_present)),
            n(i64::from(q.voting_members)),
            n(i64::from(q.required)),
            if q.met {
                "جلسه رسمی است"
            } else {
                "جلسه به حد نصاب نرسید"
            }
        );
    }
    // Numbered explicitly in Persian digits (a list's own markers follow the browser).
    h.push_str("</section>\n<section id=\"agenda\">\n<h3>دستور جلسه</h3>\n<ol style=\"list-style-type:none\">\n");
    for (i, it) in m.agenda.iter().enumerate() {
        let _ = write!(h, "<li>{}. {}", n(i as i64 + 1), escape(&it.title));
        if !it.description.is_empty() {
            let _ = write!(h, " — {}", escape(&it.description));
        }
        if !it.figures.is_empty() {
            h.push_str("<ul>");
            for f in &it.figures {
                let _ = write!(
                    h,
                    "<li>{}: {}</li>",
                    escape(&f.label),
                    escape(&to_persian_number(&f.value))
                );
            }
            h.push_str("</ul>");
        }
        let recused: Vec<&pb::Recusal> = m
            .recusals
            .iter()
            .filter(|r| r.agenda_item == i as i32 + 1)
            .collect();
        if !recused.is_empty() {
            h.push_str("<p class=\"recused\">کناره‌گیری به سبب تعارض منافع: ");
            for (k, r) in recused.iter().enumerate() {
                if k > 0 {
                    h.push_str("؛ ");
                }
                let _ = write!(h, "{} ({})", escape(&who(&r.member)), escape(&r.reason));
            }
            h.push_str("</p>");
        }
        h.push_str("</li>\n");
    }
    h.push_str("</ol>\n</section>\n");
    if !m.discussion.is_empty() {
        let _ = writeln!(
            h,
            "<section id=\"discussion\">\n<h3>خلاصهٔ مذاکرات</h3>\n<p>{}</p>\n</section>",
            escape(&m.discussion).replace('\n', "<br>")
        );
    }
    h.push_str(
        "<section id=\"resolutions\">\n<h3>مصوبات</h3>\n<ol style=\"list-style-type:none\">\n",
    );
    for r in &m.resolutions {
        let responsible = if r.responsible_member.is_empty() {
            r.responsible_body.clone()
        } else {
            who(&r.responsible_member)
        };
        let item = if r.agenda_item > 0 {
            format!(" (بند {} دستور جلسه)", n(i64::from(r.agenda_item)))
        } else {
            String::new()
        };
        let _ = write!(
            h,
            "<li><p>مصوبهٔ {}{}: {}</p><p>مسئول: {} — مهلت: {} — {}: موافق {}، مخالف {}، ممتنع {}</p>",
            escape(&display_number(m, r)),
            item,
            escape(&r.text),
            escape(&responsible),
            when(&r.deadline),
            if r.adopted {
                "تصویب شد"
            } else {
                "تصویب نشد"
            },
            n(i64::from(r.votes_for)),
            n(i64::from(r.votes_against)),
            n(i64::from(r.abstentions)),
        );
        h.push_str("<table><tr><th>عضو</th><th>رأی</th></tr>");
        for v in &r.votes {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td></tr>",
                escape(&who(&v.member)),
                vote_label(v.vote)
            );
        }
        h.push_str("</table></li>\n");
    }
    h.push_str("</ol>\n</section>\n");
    if let Some(review) = &m.review {
        let _ = write!(
            h,
            "<section id=\"review\">\n<h3>اظهارنظر اعضا دربارهٔ پیش‌نویس</h3>\n<p>مهلت اظهارنظر: تا پایان {} — {}</p>\n",
            review
                .window
                .as_ref()
                .map(|w| w.last_day_persian.clone())
                .unwrap_or_else(|| "—".into()),
            if review.state == pb::MinutesReviewState::Closed as i32 {
                "بسته شد"
            } else {
                "باز است"
            }
        );
        if !review.comments.is_empty() {
            h.push_str("<ul>\n");
            for c in &review.comments {
                let _ = writeln!(
                    h,
                    "<li>{} ({}): {}</li>",
                    escape(&who(&c.member)),
                    when(&c.create_time),
                    escape(&c.text)
                );
            }
            h.push_str("</ul>\n");
        }
        h.push_str("</section>\n");
    }
    h.push_str("<section id=\"signatures\">\n<h3>امضای حاضران</h3>\n<table>\n<tr><th>نام</th><th>امضا</th></tr>\n");
    for a in m.attendance.iter().filter(|a| {
        a.status == pb::AttendanceStatus::Present as i32
            || a.status == pb::AttendanceStatus::Represented as i32
    }) {
        let name = if a.status == pb::AttendanceStatus::Represented as i32 {
            format!("{} (به نمایندگی از {})", a.substitute_name, who(&a.member))
        } else {
            who(&a.member)
        };
        let signed = match m.signatures.iter().find(|s| s.member == a.member) {
            Some(s) => format!("امضا شد: {}", when(&s.sign_time)),
            None if m.state == pb::MeetingState::Closed as i32 => "هنوز امضا نشده".to_owned(),
            None => String::new(),
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"sign\">{}</td></tr>",
            escape(&name),
            escape(&signed)
        );
    }
    h.push_str("</table>\n");
    if !m.content_sha256.is_empty() {
        let _ = writeln!(
            h,
            // The form's version is printed with the hash: a paper copy says how to check it.
            // The algorithm's name and the hash stay Latin: they are typed into a checker.
            "<p dir=\"ltr\"><span data-latin>SHA-256</span> (v{}): <code data-latin>{}</code> — تأیید: {}</p>",
            m.minutes_hash_version,
            escape(&m.content_sha256),
            when(&m.close_time)
        );
    }
    h.push_str("</section>\n");
    let title = format!("صورتجلسهٔ جلسهٔ {} — {}", n(i64::from(m.number)), g.title);
    mosharekat_document::page(&title, MINUTES_CSS, &h)
}

/// The minutes' own rules, after the kit's.
const MINUTES_CSS: &str = ".sign{height:3cm}";

/// `{meeting}-{n}` in Persian digits.
fn display_number(m: &pb::Meeting, r: &pb::Resolution) -> String {
    if r.display_number.is_empty() {
        to_persian_digits(&format!("{}-{}", m.number, r.number))
    } else {
        r.display_number.clone()
    }
}

/// The extract (ابلاغیهٔ مصوبه) of resolution `r` of meeting `m` in group `g`: addressed
/// to the body (or member) responsible, with its number, text, deadline and vote, and the
/// approved minutes' hash it comes from.
pub fn render_extract(
    g: &pb::WorkingGroup,
    m: &pb::Meeting,
    r: &pb::Resolution,
    members: &[pb::Member],
) -> String {
    let member = |name: &str| members.iter().find(|x| x.name == name);
    let number = display_number(m, r);
    let title = format!("ابلاغیهٔ مصوبهٔ {number} — {}", g.title);
    let mut h = String::new();
    let addressee = if r.responsible_member.is_empty() {
        r.responsible_body.clone()
    } else {
        member(&r.responsible_member)
            .map(|x| {
                if x.position_title.is_empty() {
                    x.full_name.clone()
                } else {
                    format!("{}، {}", x.full_name, x.position_title)
                }
            })
            .unwrap_or_else(|| r.responsible_member.clone())
    };
    let _ = write!(
        h,
        "<header>\n<h1>{}</h1>\n<h2>ابلاغیهٔ مصوبه</h2>\n<p>شمارهٔ مصوبه: {} — تاریخ ابلاغ: {}</p>\n</header>\n",
        escape(&g.title),
        escape(&number),
        when(
            r.extract_send_time
                .as_ref()
                .map_or(&m.close_time, |_| &r.extract_send_time)
        ),
    );
    let _ = write!(
        h,
        "<section id=\"addressee\">\n<p>به: {}</p>\n<p>موضوع: ابلاغ مصوبهٔ {} جلسهٔ شمارهٔ {} کارگروه مورخ {}</p>\n</section>\n",
        escape(&addressee),
        escape(&number),
        n(i64::from(m.number)),
        when(
            m.start_time
                .as_ref()
                .map_or(&m.scheduled_time, |_| &m.start_time)
        ),
    );
    let _ = write!(
        h,
        "<section id=\"resolution\">\n<p>با سلام، به استحضار می‌رساند کارگروه در جلسهٔ یادشده مقرر کرد:</p>\n<blockquote>{}</blockquote>\n\
         <p>مهلت اجرا: تا پایان {}</p>\n<p>نتیجهٔ رأی: موافق {}، مخالف {}، ممتنع {}</p>\n</section>\n",
        escape(&r.text).replace('\n', "<br>"),
        r.legal_deadline
            .as_ref()
            .map(|d| d.last_day_persian.clone())
            .unwrap_or_else(|| when(&r.deadline)),
        n(i64::from(r.votes_for)),
        n(i64::from(r.votes_against)),
        n(i64::from(r.abstentions)),
    );
    let chair = m
        .roster
        .iter()
        .find(|x| x.seat == pb::Seat::Chair as i32)
        .map(|x| x.full_name.clone())
        .unwrap_or_default();
    let _ = write!(
        h,
        "<section id=\"signature\">\n<p>رئیس کارگروه: {}</p>\n<p class=\"sign\"></p>\n\
         <p dir=\"ltr\"><span data-latin>SHA-256</span> (v{}): <code data-latin>{}</code></p>\n</section>\n",
        escape(&chair),
        m.minutes_hash_version,
        escape(&m.content_sha256),
    );
    mosharekat_document::page(&title, MINUTES_CSS, &h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extract_shares_the_minutes_head_and_is_addressed() {
        let g = pb::WorkingGroup {
            title: "کارگروه".into(),
            ..Default::default()
        };
        let m = pb::Meeting {
            number: 2,
            close_time: Some(prost_types::Timestamp {
                seconds: 1_742_464_800,
                nanos: 0,
            }),
            content_sha256: "ab".repeat(32),
            minutes_hash_version: 3,
            ..Default::default()
        };
        let r = pb::Resolution {
            number: 3,
            text: "متن مصوبه".into(),
            responsible_body: "ادارهٔ کل بهزیستی".into(),
            adopted: true,
            ..Default::default()
        };
        let html = render_extract(&g, &m, &r, &[]);
        let minutes = render(&g, &m, &[]);
        let head_of = |h: &str| h[..h.find("</head>").unwrap()].replace(|c: char| c != '<', "");
        assert_eq!(head_of(&html), head_of(&minutes), "one head for both");
        assert!(html.contains("<style>"));
        for want in [
            "ابلاغیهٔ مصوبه",
            "۲-۳",
            "به: ادارهٔ کل بهزیستی",
            "متن مصوبه",
            "۱۴۰۳/۱۲/۳۰",
            "SHA-256</span> (v۳)",
        ] {
            assert!(html.contains(want), "{want}: {html}");
        }
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(escape("<script>\"'&"), "&lt;script&gt;&quot;&#39;&amp;");
    }

    #[test]
    fn renders_rtl_persian_with_jalali_date() {
        let g = pb::WorkingGroup {
            title: "کارگروه <مشارکت>".into(),
            province: "اردبیل".into(),
            ..Default::default()
        };
        let m = pb::Meeting {
            number: 1,
            scheduled_time: Some(prost_types::Timestamp {
                seconds: 1_742_464_800,
                nanos: 0,
            }), // 2025-03-20 10:00 UTC
            attendance: vec![pb::Attendance {
                member: "m1".into(),
                status: pb::AttendanceStatus::Present as i32,
                substitute_name: String::new(),
            }],
            ..Default::default()
        };
        let members = [pb::Member {
            name: "m1".into(),
            full_name: "علی رضایی".into(),
            ..Default::default()
        }];
        let html = render(&g, &m, &members);
        assert!(html.contains("dir=\"rtl\"") && html.contains("lang=\"fa\""));
        assert!(html.contains("۱۴۰۳/۱۲/۳۰ ۱۳:۳۰"), "{html}");
        assert!(html.contains("علی رضایی"));
        assert!(html.contains("کارگروه &lt;مشارکت&gt;"));
        assert!(!html.contains("<مشارکت>"));
    }
}
