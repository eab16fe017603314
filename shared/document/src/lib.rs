//! The suite's printable documents — the minutes (صورتجلسه), resolution extracts (ابلاغیهٔ
//! مصوبه) and licence certificates — built on one kit, so that each reads the same in a
//! browser and on paper:
//!
//! - [`page`]: the whole document around a body: `lang="fa" dir="rtl"`, the Vazirmatn font
//!   embedded as a `data:` URI (the document renders alike where the font is not
//!   installed), A4 pages with margins, tables that wrap rather than clip, Persian list
//!   numbers (۱. ۲. rather than 1. 2.), and the body's numbers in Persian ([`persian_numerals`]).
//! - [`escape`]: text for element content and attribute values.
//! - [`persian_numerals`]: the numbers a person reads in an HTML fragment, in Persian digits
//!   with `٫` decimals; identifiers that must stay Latin are marked `data-latin`.
//! - [`qr_svg`]: a QR code as inline SVG (for the certificate's verification code).
//!
//! `mosharekat-testkit`'s `browser` feature opens such documents in headless Chromium and
//! checks all of this as rendered.
#![forbid(unsafe_code)]

use std::sync::LazyLock;

use base64::Engine as _;
use mosharekat_persian::digits::to_persian_number;

/// The family of the embedded font, as the style names it.
pub const FONT_FAMILY: &str = "Vazirmatn";

/// Vazirmatn 33.0.3, the variable font (weights 100–900), OFL 1.1: `fonts/README.md`.
const FONT_WOFF2: &[u8] = include_bytes!("../fonts/Vazirmatn-Variable.woff2");

/// The attribute that keeps an element's digits Latin (a hash, an algorithm's name).
pub const LATIN: &str = "data-latin";

static STYLE: LazyLock<String> = LazyLock::new(|| {
    let font = base64::engine::general_purpose::STANDARD.encode(FONT_WOFF2);
    format!(
        // `font-display:block`: text waits for the font rather than printing in another.
        "@font-face{{font-family:\"{FONT_FAMILY}\";src:url(data:font/woff2;base64,{font}) format(\"woff2\");\
         font-weight:100 900;font-style:normal;font-display:block}}\n\
         @page{{size:A4;margin:2cm 1.8cm}}\n\
         *{{box-sizing:border-box}}\n\
         html{{direction:rtl}}\n\
         body{{font-family:\"{FONT_FAMILY}\",sans-serif;font-size:11pt;line-height:1.8;color:#000;\
         max-width:17.4cm;margin:1cm auto;padding:0 0.5cm}}\n\
         @media print{{body{{max-width:none;margin:0;padding:0}}}}\n\
         h1{{font-size:16pt}}h2{{font-size:14pt}}h3{{font-size:12pt}}\n\
         h1,h2,h3{{line-height:1.4;break-after:avoid}}\n\
         p,li,h1,h2,h3{{overflow-wrap:anywhere}}\n\
         ol{{list-style-type:persian}}\n\
         table{{border-collapse:collapse;width:100%;table-layout:fixed;margin:0.4em 0}}\n\
         td,th{{border:1px solid #444;padding:4px 8px;text-align:start;vertical-align:top;overflow-wrap:anywhere}}\n\
         th{{background:#eee}}\n\
         thead{{display:table-header-group}}\n\
         tr{{break-inside:avoid}}\n\
         code{{font-family:monospace;font-size:9pt}}\n\
         [{LATIN}]{{direction:ltr;unicode-bidi:isolate;overflow-wrap:anywhere}}\n\
         svg.qr{{display:block;width:3.5cm;height:3.5cm}}\n"
    )
});

/// The kit's style sheet, the font included: what [`page`] puts in `<head>`.
pub fn style() -> &'static str {
    &STYLE
}

/// A whole document: the head (title, the kit's style, then `extra_css`, the document's
/// own rules) and `body` (HTML, escaped by the caller) with its numbers in Persian.
pub fn page(title: &str, extra_css: &str, body: &str) -> String {
    let mut h = String::with_capacity(STYLE.len() + body.len() * 2 + 256);
    h.push_str("<!DOCTYPE html>\n<html lang=\"fa\" dir=\"rtl\">\n<head>\n<meta charset=\"utf-8\">\n<title>");
    h.push_str(&persian_numerals(&escape(title)));
    h.push_str("</title>\n<style>\n");
    h.push_str(&STYLE);
    h.push_str(extra_css);
    h.push_str("\n</style>\n</head>\n<body>\n");
    h.push_str(&persian_numerals(body));
    h.push_str("</body>\n</html>\n");
    h
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

/// The text of the HTML fragment `html` with every number a person reads written for a
/// Persian reader ([`to_persian_number`]: Persian digits, `٫` decimals, `٪`): free text
/// typed with Latin digits too. Tags, attributes, character references, `<style>` and
/// `<script>`, and elements marked `data-latin` (and what they hold) are left as they are.
pub fn persian_numerals(html: &str) -> String {
    let mut out = String::with_capacity(html.len() * 2);
    // While inside a `data-latin` element: its tag name and how deep in it we are.
    let mut latin: Option<(String, usize)> = None;
    let mut rest = html;
    while !rest.is_empty() {
        if rest.starts_with('<') {
            let end = rest.find('>').map_or(rest.len(), |i| i + 1);
            let tag = &rest[..end];
            out.push_str(tag);
            rest = &rest[end..];
            let closing = tag.starts_with("</");
            let name: String = tag
                .trim_start_matches(['<', '/'])
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_ascii_lowercase();
            let self_closing = tag.ends_with("/>");
            if !closing && (name == "style" || name == "script") {
                let close = format!("</{name}");
                let end = rest.to_ascii_lowercase().find(&close).unwrap_or(rest.len());
                out.push_str(&rest[..end]);
                rest = &rest[end..];
                continue;
            }
            match &mut latin {
                Some((n, depth)) if *n == name && !self_closing => {
                    if closing {
                        *depth -= 1;
                    } else {
                        *depth += 1;
                    }
                    if *depth == 0 {
                        latin = None;
                    }
                }
                Some(_) => {}
                None if !closing && !self_closing && has_latin_attribute(tag) => {
                    latin = Some((name, 1));
                }
                None => {}
            }
        } else if rest.starts_with('&') {
            // A character reference (`&#39;`) keeps its digits.
            let end = rest.find(';').filter(|&i| i <= 10).map_or(1, |i| i + 1);
            out.push_str(&rest[..end]);
            rest = &rest[end..];
        } else {
            let end = rest.find(['<', '&']).unwrap_or(rest.len());
            let text = &rest[..end];
            if latin.is_some() {
                out.push_str(text);
            } else {
                out.push_str(&to_persian_number(text));
            }
            rest = &rest[end..];
        }
    }
    out
}

fn has_latin_attribute(tag: &str) -> bool {
    tag.split(|c: char| c.is_whitespace() || c == '>' || c == '/')
        .any(|a| a == LATIN || a.starts_with("data-latin="))
}

/// A QR code could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum QrError {
    #[error("{len} bytes do not fit in a QR code")]
    TooLong { len: usize },
}

/// `text` as a QR code (error correction level M, with its quiet zone), an inline `<svg
/// class="qr">` for a document's body; the kit's style sizes it for print.
pub fn qr_svg(text: &str) -> Result<String, QrError> {
    use qrcode::render::svg;
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M)
        .map_err(|_| QrError::TooLong { len: text.len() })?;
    let svg = code.render::<svg::Color>().module_dimensions(4, 4).build();
    // Inline in HTML: no XML declaration.
    let svg = svg.find("<svg").map_or(svg.as_str(), |i| &svg[i..]);
    Ok(svg.replacen("<svg ", "<svg class=\"qr\" role=\"img\" ", 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(escape("<script>\"'&"), "&lt;script&gt;&quot;&#39;&amp;");
    }

    #[test]
    fn numerals_in_text_only() {
        assert_eq!(
            persian_numerals("<td colspan=\"2\">0.0 و 50%</td>"),
            "<td colspan=\"2\">۰٫۰ و ۵۰٪</td>"
        );
        // Character references keep their digits (else `&#39;` would no longer be `'`).
        assert_eq!(persian_numerals("a&#39;1&amp;2"), "a&#39;۱&amp;۲");
        assert_eq!(
            persian_numerals("<style>td{width:10%}</style><p>3</p>"),
            "<style>td{width:10%}</style><p>۳</p>"
        );
    }

    #[test]
    fn latin_elements_keep_their_digits() {
        assert_eq!(
            persian_numerals(
                "<p>v2 <code data-latin>ab12<span>3</span></code> <span data-latin>SHA-256</span> 4</p>"
            ),
            "<p>v۲ <code data-latin>ab12<span>3</span></code> <span data-latin>SHA-256</span> ۴</p>"
        );
        // Nested elements of the same name end the Latin run at the right close.
        assert_eq!(
            persian_numerals("<span data-latin>1<span>2</span>3</span>4"),
            "<span data-latin>1<span>2</span>3</span>۴"
        );
    }

    #[test]
    fn a_page_is_rtl_persian_a4_with_the_font() {
        let h = page("صورتجلسهٔ 1", "", "<ol><li>1.5</li></ol>");
        assert!(h.starts_with("<!DOCTYPE html>\n<html lang=\"fa\" dir=\"rtl\">"));
        assert!(h.contains("<title>صورتجلسهٔ ۱</title>"));
        assert!(h.contains("@page{size:A4;"));
        assert!(h.contains("ol{list-style-type:persian}"));
        assert!(
            h.contains("src:url(data:font/woff2;base64,d09GMg"),
            "woff2 magic"
        );
        assert!(h.contains("<li>۱٫۵</li>"));
    }

    #[test]
    fn qr_codes_are_inline_svg() {
        let svg = qr_svg("MSK-7Q2F-9KDA").unwrap();
        assert!(
            svg.starts_with("<svg class=\"qr\" role=\"img\" xmlns="),
            "{svg}"
        );
        assert!(svg.ends_with("</svg>"));
        assert!(matches!(
            qr_svg(&"x".repeat(5000)),
            Err(QrError::TooLong { len: 5000 })
        ));
    }
}
