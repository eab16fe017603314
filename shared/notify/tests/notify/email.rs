//! E-mail through a real SMTP server (aiosmtpd, started here): delivery arrives in UTF-8
//! with no national code, a refused recipient ends FAILED with the server's reason after
//! its retries (then listed as work for the office that caused it), and a server down
//! then up is retried and delivered. The clock is moved past each backoff, never slept on.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::TimeDelta;
use tonic::Request;

use mosharekat_api::common::v1 as pb;
use mosharekat_notify::email::{
    Mailer, RetryPolicy, Round, SmtpSecurity, SmtpSettings, deliver_due,
};
use mosharekat_notify::{NotificationApi, Sequence, State, enqueue, store};
use mosharekat_platform::auth::{Principal, Role};
use mosharekat_platform::testing::Backend;
use pb::notification_service_server::NotificationService as _;

use crate::support::{Env, email_to, env, offered};

on_both_databases!(
    an_email_arrives_and_a_refused_recipient_fails_after_its_retries,
    a_server_down_then_up_is_retried_and_delivered,
);

pub const INSTALL: &str = "pip install aiosmtpd==1.4.6";

/// The SMTP server, killed when dropped.
struct Smtp {
    child: Child,
    folder: tempfile::TempDir,
}

impl Smtp {
    fn start(port: u16) -> Self {
        let has = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            has,
            "the e-mail tests need a real SMTP server, aiosmtpd, which is not installed: \
             install it with `{INSTALL}`"
        );
        let folder = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg(folder.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(out).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the SMTP server starts within 30 s");
        assert_eq!(line.trim(), "ready", "the SMTP server did not start");
        Self { child, folder }
    }

    fn received(&self) -> Vec<serde_json::Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.folder.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn mailer(port: u16) -> Mailer {
    Mailer::new(&SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        security: SmtpSecurity::Plain,
        credentials: None,
        from: "سامانه مشارکت <notify@judiciary.example>".into(),
        timeout: Duration::from_secs(10),
    })
    .unwrap()
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        first_backoff: Duration::from_secs(60),
        max_backoff: Duration::from_secs(3600),
        ..RetryPolicy::default()
    }
}

async fn get(e: &Env, seq: Sequence) -> mosharekat_notify::Notification {
    store::get(e.db.conn(), seq).await.unwrap().unwrap().value
}

async fn an_email_arrives_and_a_refused_recipient_fails_after_its_retries(b: Backend) {
    let e = env(b).await;
    let port = free_port();
    let smtp = Smtp::start(port);
    let txn = e.db.begin_write().await.unwrap();
    let ok = enqueue(
        &txn,
        offered(
            1234,
            email_to(
                "info@mehr.example",
                "شناسه ملی موسسه: ۱۰۳۸۰۲۸۴۷۹۰ — شرح در https://adliran.ir/r/1234",
            ),
        ),
    )
    .await
    .unwrap();
    let refused = enqueue(&txn, offered(1235, email_to("refuse@nowhere.example", "")))
        .await
        .unwrap();
    txn.commit().await.unwrap();
    let (m, p) = (mailer(port), policy());

    assert_eq!(
        deliver_due(&e.db, &m, &p).await.unwrap(),
        Round {
            delivered: 1,
            retrying: 1,
            failed: 0
        }
    );
    let got = smtp.received();
    assert_eq!(got.len(), 1);
    let mail = &got[0];
    assert_eq!(mail["rcpt_tos"], serde_json::json!(["info@mehr.example"]));
    assert_eq!(mail["subject"], "پیشنهاد ارجاع ۱۲۳۴");
    assert_eq!(mail["content_type"], "text/plain");
    assert_eq!(mail["charset"], "utf-8");
    let body = mail["body"].as_str().unwrap();
    assert!(
        body.starts_with(
            "موسسه خیریه مهر گرامی، ارجاع ۱۲۳۴ به شما پیشنهاد شد؛ مهلت پاسخ تا پایان ۲۰ اسفند ۱۴۰۴."
        ),
        "{body}"
    );
    assert!(
        body.contains("۱۰۳۸۰۲۸۴۷۹۰"),
        "e-mail may carry the legal-entity id"
    );
    assert_eq!(
        mosharekat_notify::content::check_no_national_code(body),
        Ok(())
    );
    let n = get(&e, ok).await;
    assert_eq!(n.state, State::Delivered);
    assert_eq!(n.attempts, 1);
    assert_eq!(n.delivered_us, Some(e.clock.now_micros()));

    // Refused with 550: queued again after the first backoff.
    let r = get(&e, refused).await;
    assert_eq!((r.state, r.attempts), (State::Queued, 1));
    assert!(r.failure_reason.contains("550"), "{}", r.failure_reason);
    assert_eq!(r.next_attempt_us, Some(e.clock.now_micros() + 60_000_000));
    // Not before its time.
    e.clock.advance(TimeDelta::seconds(59));
    assert_eq!(deliver_due(&e.db, &m, &p).await.unwrap(), Round::default());
    e.clock.advance(TimeDelta::seconds(1));
    assert_eq!(deliver_due(&e.db, &m, &p).await.unwrap().retrying, 1);
    let r = get(&e, refused).await;
    assert_eq!(
        r.next_attempt_us,
        Some(e.clock.now_micros() + 120_000_000),
        "doubled"
    );
    e.clock.advance(TimeDelta::seconds(120));
    assert_eq!(deliver_due(&e.db, &m, &p).await.unwrap().failed, 1);
    let r = get(&e, refused).await;
    assert_eq!((r.state, r.attempts), (State::Failed, 3));
    assert!(r.failure_reason.contains("550"), "{}", r.failure_reason);
    assert_eq!(r.failed_us, Some(e.clock.now_micros()));
    assert_eq!(r.next_attempt_us, None);
    e.clock.advance(TimeDelta::days(1));
    assert_eq!(deliver_due(&e.db, &m, &p).await.unwrap(), Round::default());
    assert_eq!(smtp.received().len(), 1, "nothing sent twice");

    // The office that caused it has it as work.
    let api = NotificationApi::new(e.db.clone());
    let mut req = Request::new(pb::ListNotificationsRequest {
        state: pb::NotificationState::Failed as i32,
        ..Default::default()
    });
    req.extensions_mut().insert(Principal {
        subject: "officer".into(),
        role: Role::CenterOfficer,
        institution: None,
        member: None,
        service: None,
        authority: None,
        on_behalf_of: None,
    });
    let work = api.list_notifications(req).await.unwrap().into_inner();
    let names: Vec<&str> = work.notifications.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, [refused.name()]);
    assert!(work.notifications[0].failure_reason.contains("550"));
}

async fn a_server_down_then_up_is_retried_and_delivered(b: Backend) {
    let e = env(b).await;
    let port = free_port();
    let txn = e.db.begin_write().await.unwrap();
    let seq = enqueue(&txn, offered(77, email_to("info@mehr.example", "")))
        .await
        .unwrap();
    txn.commit().await.unwrap();
    let (m, p) = (mailer(port), policy());
    // Nobody listens on the port.
    assert_eq!(deliver_due(&e.db, &m, &p).await.unwrap().retrying, 1);
    let n = get(&e, seq).await;
    assert_eq!((n.state, n.attempts), (State::Queued, 1));
    assert!(!n.failure_reason.is_empty());
    // The server comes up; after the backoff, the retry is delivered.
    let smtp = Smtp::start(port);
    e.clock.advance(TimeDelta::seconds(60));
    assert_eq!(deliver_due(&e.db, &m, &p).await.unwrap().delivered, 1);
    let n = get(&e, seq).await;
    assert_eq!((n.state, n.attempts), (State::Delivered, 2));
    assert!(n.failure_reason.is_empty());
    let got = smtp.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["subject"], "پیشنهاد ارجاع ۷۷");
}
