//! E-mail, the channel the service delivers itself, over SMTP (lettre: tokio, rustls on
//! ring, no native TLS).
//!
//! A round ([`deliver_due`]) claims the due e-mails in one write (each becomes `SENT`, one
//! more attempt, with a lease so that a crashed sender's claim is taken again later), sends
//! them without holding the write turn, then records each outcome: accepted by the SMTP
//! server is `DELIVERED`; refused or unreachable is tried again after a capped exponential
//! backoff, and `FAILED` with the server's reason once the attempts are spent. A refusal
//! is retried too: a mailbox refused today (full, not yet created, a relay
//! misconfigured) often takes the notice tomorrow, and the office that caused it is told
//! only once the retries are spent (its work list, `state = FAILED`).

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use mosharekat_platform::db::Db;
use mosharekat_platform::error::ApiError;

use crate::model::State;
use crate::store::{self, COLUMNS, Notification};

/// How often and how long an undelivered e-mail is tried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The wait after the first failed attempt; doubled after each next one...
    pub first_backoff: Duration,
    /// ...up to this.
    pub max_backoff: Duration,
    /// How long a claimed e-mail is left to its sender before another round takes it
    /// (longer than the SMTP timeout).
    pub lease: Duration,
    /// How many e-mails one round claims.
    pub batch: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            first_backoff: Duration::from_secs(60),
            max_backoff: Duration::from_secs(3600),
            lease: Duration::from_secs(600),
            batch: 50,
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (from 1).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.first_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// How the SMTP server is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// No TLS: only for a relay on the same host or a test server.
    Plain,
    /// STARTTLS on the submission port (587), required.
    StartTls,
    /// TLS from the first byte (465).
    Tls,
}

/// Where and as whom e-mail is sent.
#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    /// User and password, if the server asks for them.
    pub credentials: Option<(String, String)>,
    /// The sender, e.g. `سامانه مشارکت <notify@judiciary.example>`.
    pub from: String,
    pub timeout: Duration,
}

impl std::fmt::Debug for SmtpSettings {
    // The password stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.credentials.as_ref().map(|c| &c.0))
            .field("from", &self.from)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The e-mail channel's settings as flags and environment, for a service's command line
/// (`#[command(flatten)] smtp: SmtpArgs`). Without `--smtp-host` the channel is off.
#[derive(Clone, clap::Args)]
pub struct SmtpArgs {
    /// The SMTP server e-mail notifications are sent through; unset: no e-mail channel.
    #[arg(long = "smtp-host", env = "SMTP_HOST")]
    pub host: Option<String>,
    /// Its port (587 for STARTTLS, 465 for TLS).
    #[arg(long = "smtp-port", env = "SMTP_PORT", default_value_t = 587)]
    pub port: u16,
    /// starttls, tls, or plain (only for a relay on the same host).
    #[arg(long = "smtp-security", env = "SMTP_SECURITY", default_value = "starttls", value_parser = ["starttls", "tls", "plain"])]
    pub security: String,
    #[arg(long = "smtp-user", env = "SMTP_USER")]
    pub user: Option<String>,
    #[arg(long = "smtp-password", env = "SMTP_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// The sender of the notices.
    #[arg(
        long = "smtp-from",
        env = "SMTP_FROM",
        default_value = "notify@localhost"
    )]
    pub from: String,
    #[arg(long = "smtp-timeout", env = "SMTP_TIMEOUT", default_value = "30s")]
    pub timeout: humantime::Duration,
}

impl std::fmt::Debug for SmtpArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.settings().fmt(f)
    }
}

impl SmtpArgs {
    /// The settings, or `None` when no SMTP server is configured.
    pub fn settings(&self) -> Option<SmtpSettings> {
        let host = self.host.clone().filter(|h| !h.is_empty())?;
        Some(SmtpSettings {
            host,
            port: self.port,
            security: match self.security.as_str() {
                "plain" => SmtpSecurity::Plain,
                "tls" => SmtpSecurity::Tls,
                _ => SmtpSecurity::StartTls,
            },
            credentials: self.user.clone().zip(self.password.clone()),
            from: self.from.clone(),
            timeout: self.timeout.into(),
        })
    }
}

/// An SMTP client and the sender it writes as.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("from", &self.from).finish()
    }
}

impl Mailer {
    pub fn new(s: &SmtpSettings) -> anyhow::Result<Self> {
        let from: Mailbox = s
            .from
            .parse()
            .map_err(|e| anyhow::anyhow!("the sender {:?}: {e}", s.from))?;
        let builder = match s.security {
            SmtpSecurity::Plain => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host),
            SmtpSecurity::StartTls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&s.host)?
            }
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&s.host)?,
        };
        let mut builder = builder.port(s.port).timeout(Some(s.timeout));
        if let Some((user, password)) = &s.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }

    /// Sends one e-mail: plain text, UTF-8. The error is the server's answer or why it
    /// could not be reached, for the notification's failure reason.
    pub async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), String> {
        let to: Mailbox = to.parse().map_err(|e| format!("the address: {e}"))?;
        let message = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_string())
            .map_err(|e| format!("the message: {e}"))?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// What one round of e-mail delivery did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    pub delivered: usize,
    pub retrying: usize,
    pub failed: usize,
}

/// Claims the e-mails due at the clock's now, sends them, and records each outcome.
pub async fn deliver_due(
    db: &Db,
    mailer: &Mailer,
    policy: &RetryPolicy,
) -> Result<Round, ApiError> {
    let claimed = claim(db, policy).await?;
    let mut round = Round::default();
    for (version, n) in claimed {
        let outcome = mailer.send(&n.address, &n.subject, &n.text).await;
        let txn = db.begin_write().await?;
        let now = txn.now_micros();
        let mut next = n.clone();
        match outcome {
            Ok(()) => {
                next.state = State::Delivered;
                next.delivered_us = Some(now);
                next.next_attempt_us = None;
                next.failure_reason.clear();
                round.delivered += 1;
            }
            Err(why) if next.attempts >= i64::from(policy.max_attempts) => {
                next.state = State::Failed;
                next.failed_us = Some(now);
                next.next_attempt_us = None;
                next.failure_reason = why;
                round.failed += 1;
            }
            Err(why) => {
                let attempt = u32::try_from(next.attempts).unwrap_or(u32::MAX);
                next.state = State::Queued;
                next.next_attempt_us = Some(now + micros(policy.backoff(attempt)));
                next.failure_reason = why;
                round.retrying += 1;
            }
        }
        if store::save(&txn, n.seq, version, &next).await? {
            mosharekat_platform::db::commit(txn).await?;
        } else {
            // Its lease ran out and another round took it: that round records it.
            tracing::warn!(notification = %n.seq, "an e-mail's claim was taken over");
        }
    }
    Ok(round)
}

/// Marks the due e-mails `SENT` with one more attempt and a lease, in one write; returns
/// them with their new versions.
async fn claim(db: &Db, policy: &RetryPolicy) -> Result<Vec<(i64, Notification)>, ApiError> {
    let txn = db.begin_write().await?;
    let now = txn.now_micros();
    let due = store::query(
        &txn,
        &format!(
            "SELECT {COLUMNS} FROM notification WHERE channel = 'EMAIL' \
             AND state IN ('QUEUED', 'SENT') AND next_attempt_us <= $1 \
             ORDER BY next_attempt_us, seq LIMIT $2"
        ),
        vec![now.into(), i64::from(policy.batch).into()],
    )
    .await?;
    let mut claimed = Vec::with_capacity(due.len());
    for v in due {
        let mut n = v.value;
        n.state = State::Sent;
        n.sent_us = Some(now);
        n.attempts += 1;
        n.next_attempt_us = Some(now + micros(policy.lease));
        if store::save(&txn, n.seq, v.version, &n).await? {
            claimed.push((v.version + 1, n));
        }
    }
    mosharekat_platform::db::commit(txn).await?;
    Ok(claimed)
}

/// Spawns the loop that delivers due e-mail every `every`, by the database's clock.
pub fn spawn_email_delivery(
    db: Db,
    mailer: Mailer,
    policy: RetryPolicy,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match deliver_due(&db, &mailer, &policy).await {
                Ok(r) if r != Round::default() => tracing::info!(
                    delivered = r.delivered,
                    retrying = r.retrying,
                    failed = r.failed,
                    "e-mail notifications"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "e-mail delivery failed; will retry"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        smtp: SmtpArgs,
    }

    #[test]
    fn smtp_settings_come_from_flags_and_the_channel_is_off_without_a_host() {
        use clap::Parser as _;
        let off = Cli::try_parse_from(["x"]).unwrap();
        assert!(off.smtp.settings().is_none());
        let on = Cli::try_parse_from([
            "x",
            "--smtp-host",
            "mail.example",
            "--smtp-user",
            "u",
            "--smtp-password",
            "secret",
        ])
        .unwrap();
        let s = on.smtp.settings().unwrap();
        assert_eq!((s.port, s.security), (587, SmtpSecurity::StartTls));
        assert_eq!(s.credentials, Some(("u".into(), "secret".into())));
        assert!(
            !format!("{:?}", on.smtp).contains("secret"),
            "no password in logs"
        );
        Mailer::new(&s).unwrap();
        assert!(Cli::try_parse_from(["x", "--smtp-security", "none"]).is_err());
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let p = RetryPolicy::default();
        let secs: Vec<u64> = (1..=8).map(|a| p.backoff(a).as_secs()).collect();
        assert_eq!(secs, [60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(p.backoff(200).as_secs(), 3600, "no overflow");
    }
}
