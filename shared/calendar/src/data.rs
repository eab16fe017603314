//! Holiday lists as data files (`data/holidays-YYYY.toml`), the suite's starting data.
//!
//! A file names its year and its source, then lists the holidays:
//!
//! ```toml
//! year = 1404
//! source = "…"
//!
//! [[holiday]]
//! date = "1404/01/02"
//! name = "شهادت حضرت علی (ع)"
//! kind = "lunar"
//! hijri = [9, 21]
//! ```
//!
//! `provisional = true` marks a computed date an administrator has still to confirm. A bad
//! file is refused whole, with an error naming the entry (its position and date).

use serde::Deserialize;

use crate::closed::{Holiday, HolidayKind};
use crate::date::SolarDate;

/// One year's official holidays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolidayYear {
    pub year: i32,
    pub source: String,
    pub holidays: Vec<Holiday>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    #[error("{file}: not a holiday file: {message}")]
    Syntax { file: String, message: String },
    #[error("{file}: the source of the list must be named")]
    NoSource { file: String },
    #[error("{file}: holiday #{index} ({date}): {problem}")]
    Entry {
        file: String,
        /// 1-based, in file order.
        index: usize,
        /// As written in the file.
        date: String,
        problem: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    year: i32,
    source: String,
    #[serde(default, rename = "holiday")]
    holidays: Vec<RawHoliday>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHoliday {
    date: String,
    name: String,
    kind: HolidayKind,
    hijri: Option<[u8; 2]>,
    #[serde(default)]
    provisional: bool,
}

/// Parses and checks a holiday file; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<HolidayYear, DataError> {
    let raw: RawFile = toml::from_str(text).map_err(|e| DataError::Syntax {
        file: file.to_owned(),
        message: e.message().to_owned(),
    })?;
    if raw.source.trim().is_empty() {
        return Err(DataError::NoSource {
            file: file.to_owned(),
        });
    }
    let mut holidays: Vec<Holiday> = Vec::with_capacity(raw.holidays.len());
    for (i, h) in raw.holidays.into_iter().enumerate() {
        let entry = |problem: String| DataError::Entry {
            file: file.to_owned(),
            index: i + 1,
            date: h.date.clone(),
            problem,
        };
        let date: SolarDate = h.date.parse().map_err(|e| entry(format!("{e}")))?;
        if date.year() != raw.year {
            return Err(entry(format!(
                "the date is not in the file's year {}",
                raw.year
            )));
        }
        let name = h.name.trim();
        if name.is_empty() {
            return Err(entry("the name is empty".into()));
        }
        match (h.kind, h.hijri) {
            (HolidayKind::Lunar, None) => {
                return Err(entry("a lunar holiday needs its hijri [month, day]".into()));
            }
            (HolidayKind::Lunar, Some([m, d]))
                if !(1..=12).contains(&m) || !(1..=30).contains(&d) =>
            {
                return Err(entry(format!(
                    "hijri [{m}, {d}] is not a Hijri month and day"
                )));
            }
            (HolidayKind::Solar, Some(_)) => {
                return Err(entry("a solar holiday has no hijri date".into()));
            }
            (HolidayKind::Solar, None) if h.provisional => {
                return Err(entry("a solar holiday is fixed, never provisional".into()));
            }
            _ => {}
        }
        if holidays.iter().any(|o| o.date == date && o.name == name) {
            return Err(entry("listed twice".into()));
        }
        holidays.push(Holiday {
            date,
            name: name.to_owned(),
            kind: h.kind,
            hijri: h.hijri,
            provisional: h.provisional,
        });
    }
    holidays.sort_by_key(|h| h.date);
    Ok(HolidayYear {
        year: raw.year,
        source: raw.source.trim().to_owned(),
        holidays,
    })
}

/// The files the suite ships, by name.
pub const SHIPPED: [(&str, &str); 2] = [
    (
        "holidays-1404.toml",
        include_str!("../data/holidays-1404.toml"),
    ),
    (
        "holidays-1405.toml",
        include_str!("../data/holidays-1405.toml"),
    ),
];

/// The shipped holiday years. The files are part of the crate and checked by its tests, so
/// a failure here is a build that should never have passed them.
pub fn shipped() -> Vec<HolidayYear> {
    SHIPPED
        .iter()
        .map(|(file, text)| parse(file, text).unwrap_or_else(|e| panic!("shipped data: {e}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
year = 1404
source = "آزمون"

[[holiday]]
date = "1404/01/13"
name = "روز طبیعت"
kind = "solar"

[[holiday]]
date = "1404/01/02"
name = "شهادت حضرت علی (ع)"
kind = "lunar"
hijri = [9, 21]
"#;

    fn entry_error(text: &str) -> (usize, String, String) {
        match parse("t.toml", text) {
            Err(DataError::Entry {
                index,
                date,
                problem,
                ..
            }) => (index, date, problem),
            other => panic!("expected an entry error, got {other:?}"),
        }
    }

    #[test]
    fn a_good_file_parses_in_date_order() {
        let y = parse("t.toml", GOOD).unwrap();
        assert_eq!(y.year, 1404);
        assert_eq!(y.source, "آزمون");
        assert_eq!(y.holidays.len(), 2);
        assert_eq!(y.holidays[0].date, SolarDate::new(1404, 1, 2).unwrap());
        assert_eq!(y.holidays[0].hijri, Some([9, 21]));
        assert!(!y.holidays[0].provisional);
    }

    #[test]
    fn a_bad_entry_is_named_by_position_and_date() {
        let bad_date = GOOD.replace("1404/01/02", "1404/12/30");
        let (i, date, problem) = entry_error(&bad_date);
        assert_eq!((i, date.as_str()), (2, "1404/12/30"));
        assert!(problem.contains("does not exist"), "{problem}");

        let other_year = GOOD.replace("1404/01/13", "1405/01/13");
        let (i, date, problem) = entry_error(&other_year);
        assert_eq!((i, date.as_str()), (1, "1405/01/13"));
        assert!(problem.contains("1404"), "{problem}");

        let no_hijri = GOOD.replace("hijri = [9, 21]\n", "");
        assert_eq!(entry_error(&no_hijri).0, 2);
        let bad_hijri = GOOD.replace("[9, 21]", "[13, 1]");
        assert!(entry_error(&bad_hijri).2.contains("[13, 1]"));
        let solar_with_hijri = GOOD.replace("kind = \"solar\"", "kind = \"solar\"\nhijri = [1, 1]");
        assert_eq!(entry_error(&solar_with_hijri).0, 1);
        let provisional_solar =
            GOOD.replace("kind = \"solar\"", "kind = \"solar\"\nprovisional = true");
        assert!(
            entry_error(&provisional_solar)
                .2
                .contains("never provisional")
        );
        let empty_name = GOOD.replace("روز طبیعت", " ");
        assert!(entry_error(&empty_name).2.contains("name"));
        let twice = format!(
            "{GOOD}\n[[holiday]]\ndate = \"1404/01/13\"\nname = \"روز طبیعت\"\nkind = \"solar\"\n"
        );
        let (i, _, problem) = entry_error(&twice);
        assert_eq!((i, problem.as_str()), (3, "listed twice"));
        let junk_date = GOOD.replace("1404/01/13", "13 Farvardin");
        assert!(entry_error(&junk_date).2.contains("13 Farvardin"));
    }

    #[test]
    fn a_malformed_file_is_a_syntax_error_naming_the_file() {
        for text in [
            "year = 1404\n",                  // no source
            "year = \"x\"\nsource = \"s\"\n", // wrong type
            "year = 1404\nsource = \"s\"\n[[holiday]]\ndate = \"1404/01/13\"\nname = \"n\"\nkind = \"weekly\"\n", // unknown kind
            "year = 1404\nsource = \"s\"\ncolour = \"red\"\n", // unknown field
            "year = 1404\nsource = \"s\"\n[[holiday]\n",       // not TOML
        ] {
            let e = parse("bad.toml", text).unwrap_err();
            assert!(
                matches!(&e, DataError::Syntax { file, .. } if file == "bad.toml"),
                "{e:?}"
            );
            assert!(e.to_string().starts_with("bad.toml: "), "{e}");
        }
        assert_eq!(
            parse("bad.toml", "year = 1404\nsource = \" \"\n"),
            Err(DataError::NoSource {
                file: "bad.toml".into()
            })
        );
    }

    #[test]
    fn the_shipped_files_parse_and_name_their_source() {
        let years = shipped();
        assert_eq!(
            years.iter().map(|y| y.year).collect::<Vec<_>>(),
            [1404, 1405]
        );
        for y in &years {
            assert!(y.source.contains("شورای فرهنگ عمومی"), "{}", y.source);
            assert!(!y.holidays.is_empty());
        }
    }
}
