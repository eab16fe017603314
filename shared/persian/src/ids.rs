//! Iranian identifiers checked by their check digits.

use std::fmt;
use std::str::FromStr;

use crate::digits::ascii_digit;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("must be {expected} digits, got {got}")]
    Length { expected: usize, got: usize },
    #[error("must contain digits only")]
    NotDigits,
    #[error("the check digit does not match")]
    CheckDigit,
    #[error("is not a real identifier (a placeholder pattern)")]
    Placeholder,
}

/// Reads exactly `N` digits (ASCII, Persian or Arabic-Indic), ignoring spaces and dashes
/// that people type between groups.
fn read_digits<const N: usize>(raw: &str) -> Result<[u8; N], IdError> {
    let mut out = [0u8; N];
    let mut n = 0usize;
    for c in raw.chars() {
        if c == ' ' || c == '-' {
            continue;
        }
        let d = ascii_digit(c).ok_or(IdError::NotDigits)?;
        if n < N {
            out[n] = d as u8 - b'0';
        }
        n += 1;
    }
    if n != N {
        return Err(IdError::Length {
            expected: N,
            got: n,
        });
    }
    Ok(out)
}

/// A national code (کد ملی): ten digits, the last a check digit over the first nine.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NationalCode(String);

impl NationalCode {
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let d = read_digits::<10>(raw)?;
        // Codes of ten equal digits pass the arithmetic but are never issued.
        if d.iter().all(|&x| x == d[0]) {
            return Err(IdError::Placeholder);
        }
        let sum: u32 = d[..9]
            .iter()
            .enumerate()
            .map(|(i, &x)| u32::from(x) * (10 - i as u32))
            .sum();
        let r = sum % 11;
        let check = u32::from(d[9]);
        let ok = if r < 2 { check == r } else { check == 11 - r };
        if !ok {
            return Err(IdError::CheckDigit);
        }
        Ok(Self(d.iter().map(|x| char::from(b'0' + x)).collect()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `******1234`: what logs and messages may show.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }
}

impl FromStr for NationalCode {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

// Never print a national code whole, even by accident.
impl fmt::Debug for NationalCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NationalCode({})", self.masked())
    }
}

impl fmt::Display for NationalCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// An optional national code stored as its ten digits (`#[serde(with = …)]`), read back
/// through [`NationalCode::parse`]. Opt-in per field, not `Serialize` on the type, so
/// that no log or message serialises a code whole by accident.
pub mod stored_national_code {
    use super::NationalCode;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(c: &Option<NationalCode>, s: S) -> Result<S::Ok, S::Error> {
        match c {
            Some(c) => s.serialize_some(c.as_str()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NationalCode>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|raw| NationalCode::parse(&raw).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// A legal entity's national ID (شناسه ملی): eleven digits, the last a check digit.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct LegalEntityId(String);

impl LegalEntityId {
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        const WEIGHTS: [u32; 10] = [29, 27, 23, 19, 17, 29, 27, 23, 19, 17];
        let d = read_digits::<11>(raw)?;
        // Digits 4 to 9 are the serial; all zero is never issued.
        if d[3..9].iter().all(|&x| x == 0) || d.iter().all(|&x| x == d[0]) {
            return Err(IdError::Placeholder);
        }
        let shift = u32::from(d[9]) + 2;
        let sum: u32 = d[..10]
            .iter()
            .zip(WEIGHTS)
            .map(|(&x, w)| (u32::from(x) + shift) * w)
            .sum();
        let r = match sum % 11 {
            10 => 0,
            r => r,
        };
        if r != u32::from(d[10]) {
            return Err(IdError::CheckDigit);
        }
        Ok(Self(d.iter().map(|x| char::from(b'0' + x)).collect()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for LegalEntityId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for LegalEntityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The check digit that completes the first ten digits of a legal-entity national ID
/// (for test data and tools); `None` unless given exactly ten ASCII digits.
pub fn legal_entity_check_digit(first_ten: &str) -> Option<char> {
    const WEIGHTS: [u32; 10] = [29, 27, 23, 19, 17, 29, 27, 23, 19, 17];
    let d: Vec<u32> = first_ten
        .chars()
        .map(|c| c.to_digit(10))
        .collect::<Option<_>>()?;
    if d.len() != 10 {
        return None;
    }
    let shift = d[9] + 2;
    let r = d
        .iter()
        .zip(WEIGHTS)
        .map(|(x, w)| (x + shift) * w)
        .sum::<u32>()
        % 11;
    char::from_digit(if r == 10 { 0 } else { r }, 10)
}

/// The check digit that completes the first nine digits of a national code.
pub fn national_code_check_digit(first_nine: &str) -> Option<char> {
    let d: Vec<u32> = first_nine
        .chars()
        .map(|c| c.to_digit(10))
        .collect::<Option<_>>()?;
    if d.len() != 9 {
        return None;
    }
    let r = d
        .iter()
        .enumerate()
        .map(|(i, x)| x * (10 - i as u32))
        .sum::<u32>()
        % 11;
    char::from_digit(if r < 2 { r } else { 11 - r }, 10)
}

/// Masks all but the last four characters: `0076229645` → `******9645`.
pub fn mask(s: &str) -> String {
    let n = s.chars().count();
    if n <= 4 {
        return "*".repeat(n);
    }
    let tail: String = s.chars().skip(n - 4).collect();
    format!("{}{}", "*".repeat(n - 4), tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_valid_national_codes() {
        for c in ["0076229645", "1583250689"] {
            assert_eq!(NationalCode::parse(c).unwrap().as_str(), c);
        }
    }

    #[test]
    fn national_code_check_digit_is_checked() {
        assert_eq!(NationalCode::parse("0076229646"), Err(IdError::CheckDigit));
        assert_eq!(NationalCode::parse("1583250680"), Err(IdError::CheckDigit));
    }

    #[test]
    fn national_code_with_equal_digits_is_refused() {
        // 1111111111 satisfies the arithmetic; it is still no one's code.
        for d in 0..=9 {
            let c = d.to_string().repeat(10);
            assert_eq!(NationalCode::parse(&c), Err(IdError::Placeholder), "{c}");
        }
    }

    #[test]
    fn national_code_wrong_length_and_garbage() {
        assert_eq!(
            NationalCode::parse("007622964"),
            Err(IdError::Length {
                expected: 10,
                got: 9
            })
        );
        assert_eq!(
            NationalCode::parse("00762296451"),
            Err(IdError::Length {
                expected: 10,
                got: 11
            })
        );
        assert_eq!(
            NationalCode::parse(""),
            Err(IdError::Length {
                expected: 10,
                got: 0
            })
        );
        assert_eq!(NationalCode::parse("00762a9645"), Err(IdError::NotDigits));
    }

    #[test]
    fn national_code_in_persian_and_arabic_digits() {
        assert_eq!(
            NationalCode::parse("۰۰۷۶۲۲۹۶۴۵").unwrap().as_str(),
            "0076229645"
        );
        assert_eq!(
            NationalCode::parse("١٥٨٣٢٥٠٦٨٩").unwrap().as_str(),
            "1583250689"
        );
        assert_eq!(
            NationalCode::parse("007-622964-5").unwrap().as_str(),
            "0076229645"
        );
    }

    #[test]
    fn national_code_never_prints_whole() {
        let c = NationalCode::parse("0076229645").unwrap();
        assert_eq!(format!("{c}"), "******9645");
        assert!(!format!("{c:?}").contains("0076229645"));
    }

    #[test]
    fn legal_entity_ids() {
        assert!(LegalEntityId::parse("10380284790").is_ok());
        assert_eq!(
            LegalEntityId::parse("10380284791"),
            Err(IdError::CheckDigit)
        );
        assert!(LegalEntityId::parse("۱۰۳۸۰۲۸۴۷۹۰").is_ok());
        assert_eq!(
            LegalEntityId::parse("1038028479"),
            Err(IdError::Length {
                expected: 11,
                got: 10
            })
        );
        assert_eq!(
            LegalEntityId::parse("11111111111"),
            Err(IdError::Placeholder)
        );
        assert_eq!(LegalEntityId::parse("1038028479x"), Err(IdError::NotDigits));
    }

    #[test]
    fn completed_ids_are_valid() {
        assert_eq!(legal_entity_check_digit("1038028479"), Some('0'));
        assert_eq!(national_code_check_digit("007622964"), Some('5'));
        for n in 0..500u32 {
            let ten = format!("14{:08}", n * 7919 + 1_000);
            let id = format!("{ten}{}", legal_entity_check_digit(&ten).unwrap());
            assert!(LegalEntityId::parse(&id).is_ok(), "{id}");
            let nine = format!("{:09}", n * 104_729 + 12_345);
            let code = format!("{nine}{}", national_code_check_digit(&nine).unwrap());
            assert!(NationalCode::parse(&code).is_ok(), "{code}");
        }
    }

    #[test]
    fn masking() {
        assert_eq!(mask("0076229645"), "******9645");
        assert_eq!(mask("123"), "***");
    }
}
