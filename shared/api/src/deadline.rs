//! The one conversion of a legal-calendar deadline to `mosharekat.common.v1.Deadline`,
//! used by every service that shows one (referral due and answer times, resolution
//! deadlines, licence expiry), so that the same deadline reads the same everywhere.

use mosharekat_calendar::{Article, ClosedReason, Deadline};

use crate::common::v1 as pb;

impl From<&Deadline> for pb::Deadline {
    fn from(d: &Deadline) -> Self {
        let rule = &d.rule;
        let mut moves = Vec::with_capacity(1 + rule.late_moves.len());
        if !rule.moved_past.is_empty() {
            // One move when it was set: from the nominal last day to the first open day
            // after it (where the first late move, if any, started from), naming each
            // closed day passed and why.
            let passed: Vec<String> = rule
                .moved_past
                .iter()
                .map(|s| {
                    let why: Vec<String> = s.reasons.iter().map(ClosedReason::to_persian).collect();
                    format!("{} ({})", s.day.to_persian_long(), why.join("، "))
                })
                .collect();
            let to = rule
                .late_moves
                .first()
                .map_or(d.last_day, |m| m.from_last_day);
            moves.push(pb::DeadlineMove {
                from_last_day: rule.nominal_last_day.to_string(),
                to_last_day: to.to_string(),
                reason: passed.join("؛ "),
                late: false,
            });
        }
        moves.extend(rule.late_moves.iter().map(|m| pb::DeadlineMove {
            from_last_day: m.from_last_day.to_string(),
            to_last_day: m.to_last_day.to_string(),
            reason: m.because.to_persian(),
            late: true,
        }));
        pb::Deadline {
            time: Some(prost_types::Timestamp {
                seconds: d.ends_at.timestamp(),
                // Below 10⁹ by construction, so it fits.
                nanos: d.ends_at.timestamp_subsec_nanos() as i32,
            }),
            last_day: d.last_day.to_string(),
            last_day_persian: d.last_day.to_persian_long_with_weekday(),
            act_day: rule.act_day.to_string(),
            period: rule.period.to_persian(),
            // At most MAX_PERIOD_DAYS (3660): fits.
            days_counted: rule.days_counted as i32,
            explanation: d.explain_persian(),
            articles: rule.articles.iter().map(|a| article(*a) as i32).collect(),
            moves,
            holidays_known: rule.holidays_known,
        }
    }
}

fn article(a: Article) -> pb::DeadlineArticle {
    match a {
        Article::CivilProcedure443 => pb::DeadlineArticle::CivilProcedure443,
        Article::CivilProcedure444 => pb::DeadlineArticle::CivilProcedure444,
        Article::CivilProcedure445 => pb::DeadlineArticle::CivilProcedure445,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveTime, Weekday};
    use mosharekat_calendar::{Calendar, Period, Province, SolarDate};

    use super::*;

    fn deadline_from(act: SolarDate, days: u32) -> Deadline {
        let at = act.at_tehran_time(NaiveTime::from_hms_opt(10, 0, 0).unwrap());
        Calendar::new()
            .deadline(at, Period::Days(days), &Province::new("تهران").unwrap())
            .unwrap()
    }

    #[test]
    fn a_friday_last_day_is_one_move_to_saturday_with_its_reason() {
        // 1404/02/19 is a Friday (2025-05-09); ten days after 1404/02/09.
        let nominal = SolarDate::new(1404, 2, 19).unwrap();
        assert_eq!(nominal.weekday(), Weekday::Fri);
        let d = deadline_from(SolarDate::new(1404, 2, 9).unwrap(), 10);
        let pb = pb::Deadline::from(&d);
        assert_eq!(pb.last_day, "1404/02/20");
        assert_eq!(pb.act_day, "1404/02/09");
        assert_eq!(pb.days_counted, 10);
        assert_eq!(pb.period, "۱۰ روز");
        assert!(
            pb.last_day_persian.contains("۲۰ اردیبهشت ۱۴۰۴"),
            "{}",
            pb.last_day_persian
        );
        assert_eq!(
            pb.time.as_ref().map(|t| (t.seconds, t.nanos)),
            Some((d.ends_at.timestamp(), 999_999_000))
        );
        assert_eq!(pb.moves.len(), 1, "{:?}", pb.moves);
        let m = &pb.moves[0];
        assert_eq!(
            (m.from_last_day.as_str(), m.to_last_day.as_str(), m.late),
            ("1404/02/19", "1404/02/20", false)
        );
        assert!(m.reason.contains("جمعه"), "{}", m.reason);
        assert_eq!(
            pb.articles,
            [
                pb::DeadlineArticle::CivilProcedure443 as i32,
                pb::DeadlineArticle::CivilProcedure445 as i32,
                pb::DeadlineArticle::CivilProcedure444 as i32,
            ]
        );
        assert!(pb.explanation.contains("پایان مهلت"), "{}", pb.explanation);
        // A bare calendar knows no year's official holidays.
        assert!(!pb.holidays_known);
    }

    #[test]
    fn an_open_last_day_has_no_move_and_no_article_444() {
        let d = deadline_from(SolarDate::new(1404, 2, 9).unwrap(), 9);
        let pb = pb::Deadline::from(&d);
        assert_eq!(pb.last_day, "1404/02/18");
        assert!(pb.moves.is_empty(), "{:?}", pb.moves);
        assert!(
            !pb.articles
                .contains(&(pb::DeadlineArticle::CivilProcedure444 as i32))
        );
    }
}
