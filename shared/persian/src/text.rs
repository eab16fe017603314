//! Persian text as stored and as searched.
//!
//! Storage keeps what a person wrote, in one canonical form: NFKC (presentation forms
//! undone), Arabic ي/ى/ك as Persian ی/ک, runs of white space as one space, ZWNJ kept.
//! Search folds further so that spellings people mix up meet: no ZWNJ, no diacritics or
//! tatweel, one form of each letter, ASCII digits, lower case.

use unicode_normalization::UnicodeNormalization;

const ZWNJ: char = '\u{200C}';

/// Why a piece of text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {max} characters, got {got}")]
    TooLong { max: usize, got: usize },
    #[error("must not contain control or bidirectional formatting characters (U+{0:04X})")]
    ForbiddenChar(u32),
}

/// Invisible formatting characters that can make a name read differently from what it is
/// (bidi overrides and isolates, marks, zero-width characters other than ZWNJ, BOM, tags).
fn is_format_char(c: char) -> bool {
    matches!(c,
        '\u{00AD}'
        | '\u{0600}'..='\u{0605}'
        | '\u{061C}'
        | '\u{06DD}'
        | '\u{070F}'
        | '\u{180E}'
        | '\u{200B}'
        | '\u{200D}'..='\u{200F}'
        | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}'
        | '\u{E0001}'
        | '\u{E0020}'..='\u{E007F}')
}

/// Arabic letter forms folded to the Persian ones (NFKC alone does not do it).
fn persian_letter(c: char) -> char {
    match c {
        '\u{064A}' | '\u{0649}' => '\u{06CC}', // ي ى → ی
        '\u{0643}' => '\u{06A9}',              // ك → ک
        _ => c,
    }
}

fn canonical(raw: &str, keep_newlines: bool) -> Result<String, TextError> {
    let mut out = String::with_capacity(raw.len());
    let mut pending_space = false;
    let mut pending_newline = false;
    for c in raw.nfkc() {
        let c = persian_letter(c);
        if c == '\n' && keep_newlines {
            pending_newline = true;
            continue;
        }
        if c.is_whitespace() {
            pending_space = true;
            continue;
        }
        if c.is_control() || is_format_char(c) {
            return Err(TextError::ForbiddenChar(c as u32));
        }
        if !out.is_empty() {
            if pending_newline {
                out.push('\n');
            } else if pending_space {
                out.push(' ');
            }
        }
        pending_space = false;
        pending_newline = false;
        out.push(c);
    }
    // NFKC output is already NFC; the letter folding keeps it so (no combining changes).
    Ok(out)
}

fn check_length(s: &str, max: usize) -> Result<(), TextError> {
    let got = s.chars().count();
    if got > max {
        return Err(TextError::TooLong { max, got });
    }
    Ok(())
}

/// Normalises a name (of a person, an institution, a place): one line, not empty, at most
/// `max` characters, no control or bidi characters.
pub fn normalize_name(raw: &str, max: usize) -> Result<String, TextError> {
    let s = canonical(raw, false)?;
    if s.is_empty() {
        return Err(TextError::Empty);
    }
    check_length(&s, max)?;
    Ok(s)
}

/// Normalises free text (a description, a reason): may be empty, keeps line breaks, at
/// most `max` characters.
pub fn normalize_text(raw: &str, max: usize) -> Result<String, TextError> {
    let s = canonical(raw, true)?;
    check_length(&s, max)?;
    Ok(s)
}

/// The key text is searched by: two spellings of one word fold to the same key.
pub fn fold_for_search(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut pending_space = false;
    for c in raw.nfkc() {
        let c = match persian_letter(c) {
            // Diacritics (harakat, tanwin, shadda, sukun, superscript alef) and tatweel.
            '\u{064B}'..='\u{065F}' | '\u{0670}' | '\u{0640}' => continue,
            ZWNJ => continue,
            c if c.is_control() || is_format_char(c) => continue,
            'أ' | 'إ' | 'آ' | 'ٱ' => 'ا',
            'ؤ' => 'و',
            'ئ' => 'ی',
            'ة' | 'ۀ' | 'ە' => 'ه',
            c => crate::digits::ascii_digit(c).unwrap_or(c),
        };
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.extend(c.to_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_mixed_letters_fold_to_one_key() {
        // The seed writes پيشگيري with Arabic yeh inside a Persian word.
        assert_eq!(fold_for_search("پيشگيري"), fold_for_search("پیشگیری"));
        assert_eq!(normalize_name("پيشگيري", 100).unwrap(), "پیشگیری");
        assert_eq!(normalize_name("كانون", 100).unwrap(), "کانون");
    }

    #[test]
    fn storage_keeps_zwnj_and_search_drops_it() {
        let s = normalize_name("نهادهای\u{200C}مردمی", 100).unwrap();
        assert!(s.contains(ZWNJ));
        assert_eq!(fold_for_search(&s), fold_for_search("نهادهایمردمی"));
    }

    #[test]
    fn whitespace_collapses() {
        assert_eq!(
            normalize_name("  انجمن \t  حمایت\u{00A0}از  ", 100).unwrap(),
            "انجمن حمایت از"
        );
        assert_eq!(
            normalize_text("خط یک\n\n  خط دو ", 100).unwrap(),
            "خط یک\nخط دو"
        );
    }

    #[test]
    fn presentation_forms_are_undone() {
        // ﻙ (U+FED9) is a presentation form of kaf; NFKC gives ك, folding gives ک.
        assert_eq!(normalize_name("\u{FED9}", 10).unwrap(), "ک");
    }

    #[test]
    fn diacritics_and_tatweel_do_not_matter_to_search() {
        assert_eq!(fold_for_search("مـــدرسه"), fold_for_search("مدرسه"));
        assert_eq!(fold_for_search("مُدَرِّسه"), fold_for_search("مدرسه"));
        assert_eq!(fold_for_search("ABC ۱۲۳"), "abc 123");
    }

    #[test]
    fn control_and_bidi_characters_are_refused_in_names() {
        assert_eq!(
            normalize_name("a\u{202E}b", 10),
            Err(TextError::ForbiddenChar(0x202E))
        );
        assert_eq!(
            normalize_name("a\u{0007}b", 10),
            Err(TextError::ForbiddenChar(0x07))
        );
        assert_eq!(
            normalize_name("a\u{2067}b", 10),
            Err(TextError::ForbiddenChar(0x2067))
        );
        assert_eq!(normalize_name("a\nb", 10).unwrap(), "a b");
    }

    #[test]
    fn empty_and_long_names() {
        assert_eq!(normalize_name("   ", 10), Err(TextError::Empty));
        assert_eq!(
            normalize_name(&"ب".repeat(11), 10),
            Err(TextError::TooLong { max: 10, got: 11 })
        );
        assert_eq!(normalize_text("", 10).unwrap(), "");
    }

    mod prop {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn never_panics_and_output_is_stable(s in any::<String>()) {
                let _ = fold_for_search(&s);
                if let Ok(n) = normalize_name(&s, 1000) {
                    // Normalising twice changes nothing.
                    prop_assert_eq!(normalize_name(&n, 1000).unwrap(), n.clone());
                    prop_assert!(!n.chars().any(|c| c.is_control()));
                }
                if let Ok(t) = normalize_text(&s, 1000) {
                    prop_assert_eq!(normalize_text(&t, 1000).unwrap(), t);
                }
            }

            #[test]
            fn folding_is_idempotent(s in "\\PC{0,40}") {
                let f = fold_for_search(&s);
                prop_assert_eq!(fold_for_search(&f), f);
            }
        }
    }
}
