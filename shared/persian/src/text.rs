//! Persian text as stored and as searched.
//!
//! Storage keeps what a person wrote, in one canonical form: NFKC (presentation forms
//! undone), Arabic ي/ى/ك as Persian ی/ک, runs of white space as one space, ZWNJ kept.
//! Search folds further so that spellings people mix up meet: no ZWNJ, no diacritics or
//! tatweel, one form of each letter, ASCII digits, lower case. A typed search term goes
//! through both steps ([`search_key`]), so it meets the key of the stored text it spells.
//!
//! Controls: tab, line feed and carriage return are white space people type; every other
//! control character (C0, DEL, C1) is refused, including U+0085 NEXT LINE, which Unicode
//! also counts as white space.

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
    #[error("must contain something to search for, not only spaces, diacritics or tatweel")]
    NothingToSearch,
}

/// The controls that count as white space here: what a keyboard or a text area produces.
fn is_typed_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r')
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
        // Before the white-space test: U+0085 and the other C1 controls are white space to
        // Unicode, and a space is not what the sender wrote.
        if c.is_control() && !is_typed_space(c) {
            return Err(TextError::ForbiddenChar(c as u32));
        }
        if c == '\n' && keep_newlines {
            pending_newline = true;
            continue;
        }
        if c.is_whitespace() {
            pending_space = true;
            continue;
        }
        if is_format_char(c) {
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

/// The key a typed search term is looked up by, or `None` when nothing was typed.
///
/// The term is first normalised exactly as a stored name is (the same characters refused,
/// the same canonical form), then folded by [`fold_for_search`], the function the stored
/// keys are made with; so the query key of a text is the stored key of that text. A term
/// that folds to nothing (only spaces, diacritics, tatweel, ZWNJ) is refused: read as "no
/// filter" it would return everything.
pub fn search_key(raw: &str, max: usize) -> Result<Option<String>, TextError> {
    if raw.is_empty() {
        return Ok(None);
    }
    let s = canonical(raw, false)?;
    check_length(&s, max)?;
    let key = fold_for_search(&s);
    if key.is_empty() {
        return Err(TextError::NothingToSearch);
    }
    Ok(Some(key))
}

/// The key stored text is searched by: two spellings of one word fold to the same key.
/// Text from a caller is folded through [`search_key`], which refuses what storage refuses.
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

    #[test]
    fn c1_and_other_controls_are_refused_not_spaced() {
        // U+0085 NEXT LINE is white space to Unicode; it used to become a space.
        for c in [
            '\u{0000}', '\u{0001}', '\u{000B}', '\u{000C}', '\u{001B}', '\u{001F}', '\u{007F}',
            '\u{0080}', '\u{0085}', '\u{009F}',
        ] {
            let raw = format!("انجمن{c}حمایت");
            let refused = TextError::ForbiddenChar(c as u32);
            assert_eq!(
                normalize_name(&raw, 100),
                Err(refused.clone()),
                "{c:?} in a name"
            );
            assert_eq!(
                normalize_text(&raw, 100),
                Err(refused.clone()),
                "{c:?} in a text"
            );
            assert_eq!(search_key(&raw, 100), Err(refused), "{c:?} in a query");
        }
        // What keyboards and text areas produce is still white space.
        assert_eq!(normalize_name("a\tb\r\nc", 10).unwrap(), "a b c");
        assert_eq!(normalize_text("a\r\nb\tc", 10).unwrap(), "a\nb c");
    }

    #[test]
    fn a_query_folds_as_the_stored_text() {
        let stored = fold_for_search(&normalize_name("انجمن حمايت از زنان", 200).unwrap());
        for typed in ["حمـــایت", "حِمایَت", "حمايت", "حمای\u{200C}ت", "  حمایت "]
        {
            let key = search_key(typed, 200).unwrap().unwrap();
            assert_eq!(key, "حمایت", "{typed:?}");
            assert!(stored.contains(&key), "{typed:?}");
        }
        assert_eq!(
            search_key("ABC ۱۲۳", 200).unwrap().as_deref(),
            Some("abc 123")
        );
    }

    #[test]
    fn a_query_of_nothing_is_no_filter_and_one_folding_to_nothing_is_refused() {
        assert_eq!(search_key("", 10), Ok(None));
        for raw in ["   ", "ـــ", "\u{064E}\u{0650}", "\u{200C}", "\t"] {
            assert_eq!(
                search_key(raw, 10),
                Err(TextError::NothingToSearch),
                "{raw:?}"
            );
        }
        assert_eq!(search_key("\u{0000}", 10), Err(TextError::ForbiddenChar(0)));
        assert_eq!(
            search_key("\u{202E}x", 10),
            Err(TextError::ForbiddenChar(0x202E))
        );
        assert_eq!(
            search_key(&"ب".repeat(11), 10),
            Err(TextError::TooLong { max: 10, got: 11 })
        );
    }

    mod prop {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn a_query_key_is_the_stored_key_of_the_same_text(s in any::<String>()) {
                match normalize_name(&s, 1000) {
                    Ok(n) if !fold_for_search(&n).is_empty() => {
                        prop_assert_eq!(search_key(&s, 1000).unwrap(), Some(fold_for_search(&n)));
                    }
                    Ok(_) => prop_assert_eq!(search_key(&s, 1000), Err(TextError::NothingToSearch)),
                    Err(TextError::Empty) if s.is_empty() => {
                        prop_assert_eq!(search_key(&s, 1000), Ok(None));
                    }
                    Err(TextError::Empty) => {
                        prop_assert_eq!(search_key(&s, 1000), Err(TextError::NothingToSearch));
                    }
                    Err(e) => prop_assert_eq!(search_key(&s, 1000), Err(e)),
                }
            }

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
