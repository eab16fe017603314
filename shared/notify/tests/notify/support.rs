//! A fresh database with the platform's and the notification tables, on a manual clock.

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use sea_orm_migration::{MigrationTrait, MigratorTrait};

use mosharekat_calendar::SolarDate;
use mosharekat_notify::{
    Delivery, NewNotification, NoticeDate, Office, Recipient, Reference, Template,
};
use mosharekat_platform::clock::Clock;
use mosharekat_platform::db::{Db, DbOptions};
use mosharekat_platform::testing::{Backend, TestDb};

/// The tables a service's migrator would apply: the platform's, then the notifications'.
pub struct Tables;

impl MigratorTrait for Tables {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        use mosharekat_platform::migrations as p;
        vec![
            Box::new(p::m20261129_000001_platform::Migration),
            Box::new(p::m20261201_000001_idempotency_per_caller::Migration),
            Box::new(p::m20261201_000002_write_probe::Migration),
            Box::new(p::m20261202_000001_event_stalls::Migration),
            Box::new(mosharekat_notify::migrations::m20261202_000001_notifications::Migration),
        ]
    }
}

pub struct Env {
    pub t: TestDb,
    pub db: Db,
    pub clock: Clock,
}

/// 1404/12/01 (2026-02-20) 09:00 Tehran.
pub fn start() -> DateTime<Utc> {
    SolarDate::new(1404, 12, 1)
        .unwrap()
        .at_tehran_time(chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap())
}

pub async fn env(b: Backend) -> Env {
    let t = TestDb::new(b).await.unwrap();
    let clock = Clock::manual(start());
    let db = Db::connect(&t.url, &DbOptions::default())
        .await
        .unwrap()
        .with_clock(clock.clone());
    db.migrate::<Tables>().await.unwrap();
    Env { t, db, clock }
}

impl Env {
    pub async fn count(&self) -> i64 {
        let r = self
            .db
            .conn()
            .query_one_raw(self.db.stmt("SELECT COUNT(*) AS n FROM notification", []))
            .await
            .unwrap()
            .unwrap();
        r.try_get("", "n").unwrap()
    }
}

pub fn institution() -> Recipient {
    Recipient::Institution {
        id: "inst-1".into(),
        name: "موسسه خیریه مهر".into(),
    }
}

/// A referral offered to the institution, answer due 1404/12/20.
pub fn offered(number: u64, delivery: Delivery) -> NewNotification {
    NewNotification {
        recipient: institution(),
        resource: format!("referrals/{number}"),
        reference: Reference::new("ارجاع", number).unwrap(),
        office: Office::Center,
        template: Template::ReferralOffered,
        dates: vec![NoticeDate::Day(SolarDate::new(1404, 12, 20).unwrap())],
        place: None,
        delivery,
    }
}

pub fn email_to(address: &str, more: &str) -> Delivery {
    Delivery::Email {
        address: address.into(),
        more: more.into(),
    }
}
