//! A licence's certificate (گواهی مجوز): a printable right-to-left Persian HTML document on
//! the suite's document kit (`mosharekat_document`: the head and style, the embedded font,
//! A4, Persian numerals in the text), with Solar Hijri dates, the licence's verification
//! code and that code's QR code (the kit's inline SVG).

use std::fmt::Write as _;

use mosharekat_calendar::SolarDate;
use mosharekat_document::{LATIN, qr_svg};
pub use mosharekat_document::{QrError, escape};

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

/// The certificate's own rules, after the kit's: the code large and monospace, the QR code
/// at the page's far side with the text beside it, the table below both.
const CERTIFICATE_CSS: &str = ".code{font-family:monospace;font-size:1.6em;letter-spacing:.1em}\
     .qr{float:left;margin:0 1em 1em 0}.qr figcaption{text-align:center;font-size:1em}\
     #licence{clear:both}th{width:30%}td ul{margin:0}";

/// The certificate as a printable HTML document. Its numbers are written in Persian by the
/// kit; the verification code alone stays Latin (`data-latin`): it is typed into the
/// public record's checker as printed, and the QR code holds the same text.
pub fn render(c: &Certificate<'_>) -> Result<String, QrError> {
    let printed = escape(&c.code.to_string());
    let qr = qr_svg(&c.code.to_string())?;
    let t = &c.licence.terms;
    let name = escape(&c.institution.fields.display_name);
    let list = |items: Vec<&str>| {
        items
            .iter()
            .map(|i| format!("<li>{}</li>", escape(i)))
            .collect::<String>()
    };
    let mut h = String::new();
    let _ = write!(
        h,
        "<header>\n<h1>قوه قضائیه — معاونت اجتماعی و پیشگیری از وقوع جرم</h1>\n<h2>گواهی مجوز فعالیت نهاد مردمی</h2>\n</header>\n\
         <section id=\"verification\">\n<figure class=\"qr\" id=\"qr\" data-code=\"{printed}\">{qr}<figcaption class=\"code\" {LATIN}>{printed}</figcaption></figure>\n\
         <p>کد رهگیری این گواهی: <span class=\"code\" {LATIN} id=\"code\">{printed}</span></p>\n\
         <p>اعتبار این مجوز را هر کس می‌تواند با این کد یا شناسهٔ ملی نهاد، در سامانهٔ استعلام عمومی مجوزها بررسی کند.</p>\n</section>\n",
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
        // The national ID is read back in any digits (the public record's checker takes
        // Persian ones), so it is printed in Persian like every other number.
        nid = escape(c.institution.national_id.as_str()),
        reg = escape(&c.institution.fields.registration_number),
        num = c.number,
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
         وضعیت مجوز ممکن است پس از صدور گواهی تغییر کند: اعتبار آن را با کد رهگیری بررسی کنید.</p>\n</footer>\n",
    );
    let title = format!(
        "گواهی مجوز شمارهٔ {} — {}",
        c.number, c.institution.fields.display_name
    );
    Ok(mosharekat_document::page(&title, CERTIFICATE_CSS, &h))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn the_code_alone_stays_latin() {
        use crate::names::{InstitutionId, InstitutionName, LicenceId, LicenceName};
        use crate::rules::{InstitutionFields, InstitutionKind, LicenceState, LicenceTerms};
        let inst_id = InstitutionId::generate();
        let institution = Institution::register(
            InstitutionName(inst_id.clone()),
            crate::rules::NewInstitution {
                national_id: mosharekat_persian::LegalEntityId::parse("10380284790").unwrap(),
                fields: InstitutionFields {
                    display_name: "کانون شماره 12".into(),
                    kind: InstitutionKind::Ngo,
                    registration_number: "1234".into(),
                    registering_authority: String::new(),
                    province: "اردبیل".into(),
                    city: String::new(),
                    address: String::new(),
                    phone: String::new(),
                    email: String::new(),
                    activity_areas: vec![ActivityArea::Mediation],
                    representatives: vec![],
                },
            },
            0,
        );
        let licence = Licence {
            name: LicenceName {
                institution: inst_id,
                id: LicenceId::generate(),
            },
            terms: LicenceTerms {
                activity_areas: vec![ActivityArea::Mediation],
                permitted_actions: vec![PermittedAction::FileComplaint],
                province: "اردبیل".into(),
                judicial_district: String::new(),
                valid_from_us: 0,
                valid_until_us: 86_400_000_000,
            },
            state: LicenceState::Active,
            history: vec![],
            create_us: 0,
            update_us: 0,
            expiry: None,
        };
        let code = VerificationCode::from_bits(12345);
        let html = render(&Certificate {
            institution: &institution,
            licence: &licence,
            number: 12,
            code: &code,
            granted_us: None,
        })
        .unwrap();
        let printed = code.to_string();
        assert!(printed.chars().any(|c| c.is_ascii_digit()), "{printed}");
        // Printed twice (under the QR code and in the text), each time marked and Latin.
        assert_eq!(html.matches(&format!("{LATIN}>{printed}<")).count(), 1);
        assert!(html.contains(&format!("{LATIN} id=\"code\">{printed}<")));
        for persian in ["کانون شماره ۱۲", "۱۰۳۸۰۲۸۴۷۹۰", "۱۲۳۴", "<td>۱۲</td>"]
        {
            assert!(html.contains(persian), "no {persian}");
        }
        // In the body: the head's embedded font is base64, digits and all.
        let body = &html[html.find("<body>").unwrap()..];
        assert!(!body.contains("1234") && !body.contains("10380284790"));
        assert!(html.contains("<title>گواهی مجوز شمارهٔ ۱۲ — کانون شماره ۱۲</title>"));
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
