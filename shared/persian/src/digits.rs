//! Persian and Arabic-Indic digits, accepted wherever a number is.

/// The ASCII digit for a Persian (U+06F0–9), Arabic-Indic (U+0660–9) or ASCII digit.
pub fn ascii_digit(c: char) -> Option<char> {
    match c {
        '0'..='9' => Some(c),
        '\u{06F0}'..='\u{06F9}' => char::from_digit(c as u32 - 0x06F0, 10),
        '\u{0660}'..='\u{0669}' => char::from_digit(c as u32 - 0x0660, 10),
        _ => None,
    }
}

/// Replaces every Persian or Arabic-Indic digit with its ASCII digit; other characters stay.
pub fn to_ascii_digits(s: &str) -> String {
    s.chars().map(|c| ascii_digit(c).unwrap_or(c)).collect()
}

/// The Persian digit for an ASCII digit, for text shown to people.
pub fn persian_digit(c: char) -> char {
    match c.to_digit(10) {
        Some(d) => char::from_u32(0x06F0 + d).unwrap_or(c),
        None => c,
    }
}

/// Replaces every ASCII digit with its Persian digit.
pub fn to_persian_digits(s: &str) -> String {
    s.chars().map(persian_digit).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_three_digit_sets_read_as_ascii() {
        assert_eq!(to_ascii_digits("۰۱۲۳۴۵۶۷۸۹"), "0123456789");
        assert_eq!(to_ascii_digits("٠١٢٣٤٥٦٧٨٩"), "0123456789");
        assert_eq!(to_ascii_digits("12۳٤x"), "1234x");
    }

    #[test]
    fn persian_digits_round_trip() {
        assert_eq!(to_persian_digits("1403/12/30"), "۱۴۰۳/۱۲/۳۰");
        assert_eq!(
            to_ascii_digits(&to_persian_digits("0123456789")),
            "0123456789"
        );
    }
}
