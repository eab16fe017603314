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

/// The Persian decimal separator (U+066B), as in ۰٫۵.
pub const DECIMAL_SEPARATOR: char = '\u{066B}';
/// The Persian thousands separator (U+066C), as in ۱٬۲۰۰.
pub const THOUSANDS_SEPARATOR: char = '\u{066C}';
/// The Persian percent sign (U+066A), as in ۵۰٪.
pub const PERCENT_SIGN: char = '\u{066A}';

fn is_digit(c: Option<char>) -> bool {
    c.is_some_and(|c| ascii_digit(c).is_some())
}

/// Numbers in `s` as a Persian reader writes them: ASCII digits become Persian, and
/// between two digits `.` becomes the decimal separator `٫` and `,` the thousands
/// separator `٬`; `%` after a digit becomes `٪`. Other text stays as it is, so that a
/// figure such as "3.5" or "50%" from another service can be shown as it was made.
pub fn to_persian_number(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len() * 2);
    for (i, &c) in chars.iter().enumerate() {
        let before = i.checked_sub(1).and_then(|j| chars.get(j).copied());
        let after = chars.get(i + 1).copied();
        out.push(match c {
            '.' if is_digit(before) && is_digit(after) => DECIMAL_SEPARATOR,
            ',' if is_digit(before) && is_digit(after) => THOUSANDS_SEPARATOR,
            '%' if is_digit(before) => PERCENT_SIGN,
            c => persian_digit(c),
        });
    }
    out
}

/// An integer in Persian digits, with a minus sign when negative: `-12` → `-۱۲`.
pub fn format_integer(n: i64) -> String {
    to_persian_digits(&n.to_string())
}

/// `x` rounded to `places` decimals in Persian digits with `٫`: (2.25, 1) → `۲٫۲`;
/// whole numbers keep their zeros, (3.0, 1) → `۳٫۰`, so that a column reads alike.
pub fn format_decimal(x: f64, places: usize) -> String {
    to_persian_number(&format!("{x:.places$}"))
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

    #[test]
    fn numbers_take_the_persian_separators() {
        assert_eq!(to_persian_number("0.0"), "۰٫۰");
        assert_eq!(to_persian_number("۳.۵"), "۳٫۵");
        assert_eq!(to_persian_number("1,200"), "۱٬۲۰۰");
        assert_eq!(to_persian_number("50%"), "۵۰٪");
        // A full stop or comma in a sentence is punctuation, not a separator.
        assert_eq!(to_persian_number("بند 2. نهاد، 3, 4"), "بند ۲. نهاد، ۳, ۴");
        assert_eq!(to_persian_number("%5 .5 5."), "%۵ .۵ ۵.");
    }

    #[test]
    fn integers_and_decimals() {
        assert_eq!(format_integer(1404), "۱۴۰۴");
        assert_eq!(format_integer(-12), "-۱۲");
        assert_eq!(format_decimal(0.0, 1), "۰٫۰");
        assert_eq!(format_decimal(3.0, 1), "۳٫۰");
        assert_eq!(format_decimal(12.346, 2), "۱۲٫۳۵");
        assert_eq!(format_decimal(7.6, 0), "۸");
    }
}
