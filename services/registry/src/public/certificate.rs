//! A licence's certificate (گواهی مجوز): a printable right-to-left Persian HTML document
//! with Solar Hijri dates in Persian digits, the licence's verification code, and that
//! code's QR code drawn inline as SVG ([`qr_svg`], the one place it is drawn).

use std::fmt::Write as _;

use mosharekat_calendar::SolarDate;
use mosharekat_persian::digits::to_persian_digits;

use super::code::VerificationCode;
use crate::rules::{ActivityArea, Institution, Licence, PermittedAction};

/// An activity area's Persian label, as the law names it.
pub fn area_label(a: ActivityArea) -> &'static str {
    use ActivityArea as A;
    match a {
        A::PublicRights => "صیانت از حقوق عامه",
        A::CitizenRights => "حقوق شهروندی",
        A::AntiCorruption => "پیشگیری و مقابله با فساد",
        A::LegitimateFreedoms => "دفاع از آزادی‌های مشروع",
        A::CrimePrevention => "پیشگیری از وقوع جرم",
        A::Mediation => "میانجیگری",
        A::Reconciliation => "صلح و سازش",
        A::LegalPsychologicalAid => "معاضدت حقوقی و روان‌شناختی",
        A::SocialWork => "مددکاری اجتماعی",
        A::SocialEntrepreneurship => "کارآفرینی اجتماعی",
        A::HumanRights => "حقوق بشر",
        A::Health => "سلامت",
        A::Women => "زنان",
        A::Family => "خانواده",
        A::Children => "اطفال و نوجوانان",
        A::Disability => "بیماران یا اشخاص دارای ناتوانی جسمی و روانی",
        A::Environment => "محیط زیست",
        A::CulturalHeritage => "میراث فرهنگی",
        A::NaturalResources => "منابع طبیعی",
        A::PromotingVirtue => "امر به معروف و نهی از منکر",
        A::VictimSupport => "حمایت از بزه‌دیدگان و خانواده آنها",
        A::AlternativeSentences => "همیاری بازپرورانه در اجرای مجازات‌های جایگزین حبس",
        A::ConvictSupport => "معاضدت به محکومان و حمایت از خانواده آنها",
    }
}

/// A permitted action's Persian label.
pub fn action_label(a: PermittedAction) -> &'static str {
    match a {
        PermittedAction::FileLawsuit => "طرح دعوی",
        PermittedAction::ReportCrime => "اعلام جرم",
        PermittedAction::FileComplaint => "شکایت",
        PermittedAction::AcceptReferrals => "پذیرش پرونده‌های ارجاعی",
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The QR code of `text` as an inline `<svg>` element (black on white, with its quiet
/// zone, at least 160 px square, error correction M). The certificate's only drawing: a
/// shared document kit may take this function over as it is.
pub fn qr_svg(text: &str) -> Result<String, qrcode::types::QrError> {
    use qrcode::render::svg;
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M)?;
    let doc = code
        .render::<svg::Color<'_>>()
        .min_dimensions(160, 160)
        .dark_color(svg::Color("#000"))
        .light_color(svg::Color("#fff"))
        .quiet_zone(true)
        .build();
    // The renderer writes a standalone document; inline in HTML the XML declaration
    // has no place.
    Ok(match doc.find("<svg") {
        Some(i) => doc[i..].to_owned(),
        None => doc,
    })
}

/// A day in Tehran, Solar Hijri, long form in Persian digits (`۱۱ دی ۱۴۰۶`).
pub fn persian_day(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .and_then(|t| SolarDate::from_instant(t).ok())
        .map(SolarDate::to_persian_long)
        .unwrap_or_else(|| "—".into())
}

/// What the certificate shows of a licence.
#[derive(Debug, Clone)]
pub struct Certificate<'a> {
    pub institution: &'a Institution,
    pub licence: &'a Licence,
    /// The short number people quote («پروانه ۱۲»).
    pub number: i64,
    pub code: &'a VerificationCode,
    /// When it was granted (approved).
    pub granted_us: Option<i64>,
}

/// The certificate as a printable HTML document.
pub fn render(c: &Certificate<'_>) -> Result<String, qrcode::types::QrError> {
    let printed = c.code.to_string();
    let qr = qr_svg(&printed)?;
    let t = &c.licence.terms;
    let list = |items: Vec<&str>| {
        items
            .iter()
            .map(|i| format!("<li>{}</li>", escape(i)))
            .collect::<String>()
    };
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"fa\" dir=\"rtl\">\n<head>\n<meta charset=\"utf-8\">\n<title>گواهی مجوز شمارهٔ {num} — {name}</title>\n\
         <style>body{{font-family:Vazirmatn,Tahoma,sans-serif;margin:2cm;line-height:1.9}}table{{border-collapse:collapse;width:100%}}\
         th,td{{border:1px solid #444;padding:4px 8px;text-align:right;vertical-align:top}}th{{width:30%}}\
         .code{{font-family:monospace;font-size:1.6em;letter-spacing:.1em;direction:ltr;unicode-bidi:embed}}\
         .qr{{float:left;margin:0 1em 1em 0}}@media print{{body{{margin:1cm}}}}</style>\n</head>\n<body>\n",
        num = to_persian_digits(&c.number.to_string()),
        name = escape(&c.institution.fields.display_name),
    );
    let _ = write!(
        h,
        "<header>\n<h1>قوه قضائیه — معاونت اجتماعی و پیشگیری از وقوع جرم</h1>\n<h2>گواهی مجوز فعالیت نهاد مردمی</h2>\n</header>\n\
         <section id=\"verification\">\n<figure class=\"qr\" id=\"qr\" data-code=\"{printed_attr}\">{qr}<figcaption class=\"code\">{printed_text}</figcaption></figure>\n\
         <p>کد رهگیری این گواهی: <span class=\"code\" id=\"code\">{printed_text}</span></p>\n\
         <p>اعتبار این مجوز را هر کس می‌تواند با این کد یا شناسهٔ ملی نهاد، در سامانهٔ استعلام عمومی مجوزها بررسی کند.</p>\n</section>\n",
        printed_attr = escape(&printed),
        printed_text = escape(&printed),
    );
    let _ = write!(
        h,
        "<section id=\"licence\">\n<table>\n\
         <tr><th>نام نهاد</th><td>{name}</td></tr>\n\
         <tr><th>شناسهٔ ملی</th><td>{nid}</td></tr>\n\
         <tr><th>شمارهٔ ثبت</th><td>{reg}</td></tr>\n\
         <tr><th>شمارهٔ مجوز</th><td>{num}</td></tr>\n\
         <tr><th>استان محل اعتبار</th><td>{province}</td></tr>\n\
         <tr><th>حوزه‌های فعالیت</th><td><ul>{areas}</ul></td></tr>\n\
         <tr><th>اقدامات مجاز</th><td><ul>{actions}</ul></td></tr>\n\
         <tr><th>تاریخ صدور</th><td>{granted}</td></tr>\n\
         <tr><th>اعتبار از</th><td>{from}</td></tr>\n\
         <tr><th>اعتبار تا</th><td>{until}</td></tr>\n\
         </table>\n</section>\n",
        name = escape(&c.institution.fields.display_name),
        nid = to_persian_digits(c.institution.national_id.as_str()),
        reg = escape(&to_persian_digits(
            &c.institution.fields.registration_number
        )),
        num = to_persian_digits(&c.number.to_string()),
        province = escape(&t.province),
        areas = list(t.activity_areas.iter().map(|a| area_label(*a)).collect()),
        actions = list(
            t.permitted_actions
                .iter()
                .map(|a| action_label(*a))
                .collect()
        ),
        granted = c.granted_us.map(persian_day).unwrap_or_else(|| "—".into()),
        from = persian_day(t.valid_from_us),
        until = persian_day(t.valid_until_us),
    );
    h.push_str(
        "<footer>\n<p>این گواهی به استناد تبصرهٔ ۳ مادهٔ ۶۶ قانون آیین دادرسی کیفری صادر شده است. \
         وضعیت مجوز ممکن است پس از صدور گواهی تغییر کند: اعتبار آن را با کد رهگیری بررسی کنید.</p>\n</footer>\n</body>\n</html>\n",
    );
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_qr_code_is_inline_svg() {
        let svg = qr_svg("K7Q-M2X-9PB").unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(!svg.contains("<?xml"));
    }

    #[test]
    fn every_area_has_its_persian_label() {
        for a in ActivityArea::ALL {
            assert!(!area_label(*a).is_empty());
            assert!(!area_label(*a).is_ascii());
        }
        for a in PermittedAction::ALL {
            assert!(!action_label(*a).is_ascii());
        }
    }

    #[test]
    fn days_are_solar_hijri_in_persian_digits() {
        // 2027-03-21 00:00 UTC is 1406/01/01 in Tehran.
        let us = chrono::DateTime::parse_from_rfc3339("2027-03-21T00:00:00Z")
            .unwrap()
            .timestamp_micros();
        assert_eq!(persian_day(us), "۱ فروردین ۱۴۰۶");
    }
}
