//! A licence's verification code: short, read aloud and typed by people, so in an
//! alphabet without look-alikes, with a check character that catches a mistyped one.
//!
//! Eight symbols of Crockford's base 32 (`0-9`, `A-Z` without `I`, `L`, `O`, `U`: 40
//! random bits) and a ninth, the Luhn mod 32 check symbol, which catches every single
//! wrong symbol and every swap of two adjacent ones but a few. Printed in threes with
//! hyphens (`K7Q-M2X-9PB`); read back whatever the case, hyphens and spaces, with
//! Persian or Arabic-Indic digits, and with `O` as `0` and `I`/`L` as `1`, as Crockford's
//! decoding does. Uniqueness is the table's (a primary key); a clash is drawn again.

use std::fmt;

/// Crockford's base 32.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Random symbols in a code; one check symbol follows.
const DATA_LEN: usize = 8;
/// Symbols in a code, check included.
pub const LEN: usize = DATA_LEN + 1;

/// A well-formed verification code (its check symbol holds), in its stored form: nine
/// symbols, no hyphens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VerificationCode(String);

/// Why a text is not a verification code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeError {
    /// Not nine symbols once hyphens and spaces are dropped.
    Length,
    /// A character outside the alphabet.
    Symbol,
    /// The check symbol does not hold: a symbol was mistyped.
    Check,
}

impl CodeError {
    pub fn describe(self) -> &'static str {
        match self {
            Self::Length => "must be 9 letters and digits (hyphens and spaces aside)",
            Self::Symbol => "holds a character that is in no verification code",
            Self::Check => "does not check: a character is mistyped",
        }
    }
}

fn value(symbol: u8) -> Option<u32> {
    ALPHABET.iter().position(|c| *c == symbol).map(|p| p as u32)
}

/// The Luhn mod 32 sum of `values` (the rightmost doubled when `double_last`).
fn luhn_sum(values: &[u32], double_last: bool) -> u32 {
    let n = ALPHABET.len() as u32;
    let mut double = double_last;
    let mut sum = 0;
    for v in values.iter().rev() {
        let mut a = if double { v * 2 } else { *v };
        a = a / n + a % n;
        sum += a;
        double = !double;
    }
    sum % n
}

/// The check symbol's value for `data`.
fn check_value(data: &[u32]) -> u32 {
    let n = ALPHABET.len() as u32;
    (n - luhn_sum(data, true)) % n
}

impl VerificationCode {
    /// The code of 40 random bits (`bits`' low 40).
    pub fn from_bits(bits: u64) -> Self {
        let data: Vec<u32> = (0..DATA_LEN)
            .rev()
            .map(|i| ((bits >> (5 * i)) & 31) as u32)
            .collect();
        let mut s: String = data.iter().map(|v| ALPHABET[*v as usize] as char).collect();
        s.push(ALPHABET[check_value(&data) as usize] as char);
        Self(s)
    }

    /// A fresh random code.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b)?;
        Ok(Self::from_bits(u64::from_le_bytes(b)))
    }

    /// Reads a code as a person typed it.
    pub fn parse(raw: &str) -> Result<Self, CodeError> {
        let mut symbols = Vec::with_capacity(LEN);
        for c in raw.chars() {
            let c = mosharekat_persian::digits::ascii_digit(c).unwrap_or(c);
            let c = match c.to_ascii_uppercase() {
                '-' | ' ' | '\u{200c}' => continue,
                'O' => '0',
                'I' | 'L' => '1',
                c => c,
            };
            if !c.is_ascii() {
                return Err(CodeError::Symbol);
            }
            symbols.push(value(c as u8).ok_or(CodeError::Symbol)?);
            if symbols.len() > LEN {
                return Err(CodeError::Length);
            }
        }
        if symbols.len() != LEN {
            return Err(CodeError::Length);
        }
        if luhn_sum(&symbols, false) != 0 {
            return Err(CodeError::Check);
        }
        Ok(Self(
            symbols
                .iter()
                .map(|v| ALPHABET[*v as usize] as char)
                .collect(),
        ))
    }

    /// A code as stored (checked when it was written).
    pub fn stored(s: String) -> Self {
        Self(s)
    }

    /// The stored form: nine symbols.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The printed form: `K7Q-M2X-9PB`.
impl fmt::Display for VerificationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.0;
        if s.len() == LEN && s.is_ascii() {
            write!(f, "{}-{}-{}", &s[0..3], &s[3..6], &s[6..9])
        } else {
            f.write_str(s)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_reads_back_as_printed_and_as_typed() {
        let c = VerificationCode::from_bits(0x12_3456_789A);
        assert_eq!(c.as_str().len(), LEN);
        let printed = c.to_string();
        assert_eq!(printed.len(), LEN + 2);
        assert_eq!(VerificationCode::parse(&printed), Ok(c.clone()));
        assert_eq!(
            VerificationCode::parse(&printed.to_lowercase()),
            Ok(c.clone())
        );
        let spaced: String = c.as_str().chars().flat_map(|x| [x, ' ']).collect();
        assert_eq!(VerificationCode::parse(&spaced), Ok(c.clone()));
        let persian = mosharekat_persian::digits::to_persian_digits(&printed);
        assert_eq!(VerificationCode::parse(&persian), Ok(c));
    }

    #[test]
    fn look_alikes_read_as_what_they_look_like() {
        // 0 and 1 are in the alphabet; O, I and L never are.
        let c = VerificationCode::from_bits(0);
        assert_eq!(&c.as_str()[..8], "00000000");
        let typed = format!("OoOOOOOO{}", &c.as_str()[8..]);
        assert_eq!(VerificationCode::parse(&typed), Ok(c));
        assert_eq!(VerificationCode::parse("UUUUUUUUU"), Err(CodeError::Symbol));
    }

    #[test]
    fn every_single_mistyped_symbol_is_caught() {
        for bits in [0u64, 1, 0xFF_FFFF_FFFF, 0x5A_A5A5_5A5A, 0x01_2345_6789] {
            let c = VerificationCode::from_bits(bits);
            let s = c.as_str().as_bytes().to_vec();
            for i in 0..LEN {
                for other in ALPHABET.iter().filter(|a| **a != s[i]) {
                    let mut t = s.clone();
                    t[i] = *other;
                    let t = String::from_utf8(t).unwrap();
                    assert_eq!(VerificationCode::parse(&t), Err(CodeError::Check), "{t}");
                }
            }
        }
    }

    #[test]
    fn most_adjacent_swaps_are_caught() {
        let (mut swaps, mut caught) = (0, 0);
        for bits in (0..200u64).map(|k| k.wrapping_mul(0x9E37_79B9_7F4A_7C15) & 0xFF_FFFF_FFFF) {
            let s = VerificationCode::from_bits(bits)
                .as_str()
                .as_bytes()
                .to_vec();
            for i in 0..LEN - 1 {
                if s[i] == s[i + 1] {
                    continue;
                }
                let mut t = s.clone();
                t.swap(i, i + 1);
                swaps += 1;
                if VerificationCode::parse(std::str::from_utf8(&t).unwrap()).is_err() {
                    caught += 1;
                }
            }
        }
        // Luhn mod N misses the swap of only a few pairs of symbols.
        assert!(caught * 100 >= swaps * 95, "{caught} of {swaps}");
    }

    #[test]
    fn wrong_lengths_and_symbols_are_named() {
        assert_eq!(VerificationCode::parse(""), Err(CodeError::Length));
        assert_eq!(VerificationCode::parse("ABC-DEF"), Err(CodeError::Length));
        assert_eq!(
            VerificationCode::parse("ABCDEFGHJK"),
            Err(CodeError::Length)
        );
        assert_eq!(
            VerificationCode::parse("ABC-DEF-GH!"),
            Err(CodeError::Symbol)
        );
        assert_eq!(
            VerificationCode::parse("ABC-DEF-GHم"),
            Err(CodeError::Symbol)
        );
    }
}
