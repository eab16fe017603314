//! The kit's documents opened in headless Chromium (Debian's `chromium`): they read right
//! to left in Persian digits and the embedded font, print on A4 without clipping, and their
//! QR codes read back; and a page without the kit is caught on each count, so that the
//! checks are shown able to fail.

use mosharekat_document::{escape, page, qr_svg};
use mosharekat_persian::digits::{format_decimal, format_integer};
use mosharekat_testkit::browser::{Expect, check_document, look_at};

/// A page with what the suite's documents hold: headings, a list, a table with a long
/// unbroken word, decimals, a hash that stays Latin, and a QR code.
fn kit_page(code: &str) -> String {
    let mut body = String::new();
    body.push_str("<h1>گواهی صلاحیت نهاد مردمی</h1>\n<ol>");
    for (i, t) in ["گزارش دبیرخانه", "بررسی پرونده‌ها", "پیشنهاد نهادها"]
        .iter()
        .enumerate()
    {
        body.push_str(&format!("<li>{t} ({})</li>", format_integer(i as i64 + 1)));
    }
    body.push_str("</ol>\n<table><tr><th>عنوان</th><th>مقدار</th><th>توضیح</th></tr>");
    body.push_str(&format!(
        "<tr><td>میانهٔ روزهای رسیدگی</td><td>{}</td><td>{}</td></tr>",
        format_decimal(12.5, 1),
        "ب".repeat(120)
    ));
    // Latin digits typed in free text are written Persian by the kit.
    body.push_str("<tr><td>نرخ سازش</td><td>50%</td><td>جلسهٔ 3</td></tr></table>\n");
    body.push_str(&format!(
        "<p>کد رهگیری: <span data-latin>{}</span></p>\n{}\n",
        escape(code),
        qr_svg(code).unwrap()
    ));
    body.push_str(&format!(
        "<p dir=\"ltr\"><span data-latin>SHA-256</span>: <code data-latin>{}</code></p>\n",
        "0123456789abcdef".repeat(4)
    ));
    page("گواهی 1404", "", &body)
}

#[test]
fn the_kit_reads_and_prints_right_and_its_qr_code_reads_back() {
    let code = "MSK-7Q2F-9KDA";
    let seen = look_at(&kit_page(code), &Expect::default());
    assert!(seen.problems.is_empty(), "{:#?}", seen.problems);
    for shown in ["۱۲٫۵", "۵۰٪", "جلسهٔ ۳", "(۳)", code] {
        assert!(seen.text.contains(shown), "{shown} not in {}", seen.text);
    }
    assert_eq!(seen.qr_codes, [code]);
}

/// A page as the minutes were before the kit: its own head, a system font, Latin list
/// numbers, a Latin decimal point, Latin digits, Letter paper; and a left-to-right table
/// whose cell cannot wrap.
const WITHOUT_THE_KIT: &str = "<!DOCTYPE html>\n<html lang=\"fa\" dir=\"rtl\">\n<head>\n<meta charset=\"utf-8\">\n<title>صورتجلسه</title>\n\
<style>body{font-family:Vazirmatn,Tahoma,sans-serif;margin:2cm;line-height:1.8}table{border-collapse:collapse;width:100%}\
td,th{border:1px solid #444;padding:4px 8px;text-align:right}</style>\n</head>\n<body>\n\
<ol><li>گزارش ارجاع‌ها<ul><li>میانهٔ روزهای رسیدگی: ۰.۰</li></ul></li><li>پروندهٔ ارجاعی</li></ol>\n\
<p>SHA-256 (v2)</p>\n<table dir=\"ltr\"><tr><td style=\"white-space:nowrap\">ـــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــــ</td></tr></table>\n\
</body>\n</html>\n";

#[test]
fn the_checks_catch_a_page_without_the_kit() {
    let problems = check_document(WITHOUT_THE_KIT, &Expect::default());
    let found: Vec<&str> = problems.iter().map(|p| p.check).collect();
    for check in [
        "direction",
        "latin-digits",
        "decimal-point",
        "list-numbers",
        "font",
        "page-size",
        "clipped",
    ] {
        assert!(found.contains(&check), "{check} not caught: {problems:#?}");
    }
    let said: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(
        said.iter()
            .any(|p| p == "page-size: a page of 612×792 pt, not A4 (595×842)"),
        "Letter: {said:#?}"
    );
    assert!(said.iter().any(|p| p.contains("۰.۰")), "{said:#?}");
    assert!(
        said.iter().any(|p| p.contains("numbered decimal")),
        "{said:#?}"
    );
}
