//! `mosharekat.common.v1.NotificationService` over one service's notifications: the
//! gateways' stream and acknowledgements, and the people's lists.

use std::time::Duration;

use sea_orm::Value;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use mosharekat_api::common::v1 as pb;
use mosharekat_platform::auth::{Principal, Role};
use mosharekat_platform::change;
use mosharekat_platform::ctx::CallContext;
use mosharekat_platform::db::{Db, to_timestamp};
use mosharekat_platform::error::ApiError;
use mosharekat_platform::follow::{Wakers, follow};
use mosharekat_platform::pagination;
use pb::notification_service_server::{NotificationService, NotificationServiceServer};

use crate::model::{Channel, Recipient, Sequence, State};
use crate::store::{self, COLUMNS, Notification, Notifications};

/// How many notifications the stream reads at a time.
const STREAM_BATCH: i64 = 100;

/// The longest failure reason a gateway may send.
const MAX_REASON: usize = 500;

/// The service value: `NotificationApi::new(db).into_server()`, served beside the
/// service's own API.
#[derive(Debug, Clone)]
pub struct NotificationApi {
    db: Db,
    poll: Duration,
}

impl NotificationApi {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            poll: Duration::from_secs(1),
        }
    }

    /// How often an idle stream looks for newly queued notifications (a notification is
    /// queued by a transaction this value cannot see commit, so it looks again).
    pub fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    pub fn into_server(self) -> NotificationServiceServer<Self> {
        NotificationServiceServer::new(self)
    }
}

fn channel_to_pb(c: Channel) -> pb::NotificationChannel {
    match c {
        Channel::Sms => pb::NotificationChannel::Sms,
        Channel::ENotice => pb::NotificationChannel::ENotice,
        Channel::Email => pb::NotificationChannel::Email,
    }
}

fn state_to_pb(s: State) -> pb::NotificationState {
    match s {
        State::Queued => pb::NotificationState::Queued,
        State::Sent => pb::NotificationState::Sent,
        State::Delivered => pb::NotificationState::Delivered,
        State::Failed => pb::NotificationState::Failed,
    }
}

fn state_from_pb(v: i32, field: &str) -> Result<Option<State>, ApiError> {
    match pb::NotificationState::try_from(v) {
        Ok(pb::NotificationState::Unspecified) => Ok(None),
        Ok(pb::NotificationState::Queued) => Ok(Some(State::Queued)),
        Ok(pb::NotificationState::Sent) => Ok(Some(State::Sent)),
        Ok(pb::NotificationState::Delivered) => Ok(Some(State::Delivered)),
        Ok(pb::NotificationState::Failed) => Ok(Some(State::Failed)),
        Err(_) => Err(ApiError::invalid(field, "is not a notification state")),
    }
}

impl From<&Notification> for pb::Notification {
    fn from(n: &Notification) -> Self {
        let kind = match n.recipient {
            Recipient::Institution { .. } => pb::RecipientKind::Institution,
            Recipient::Member { .. } => pb::RecipientKind::Member,
            Recipient::Office { .. } => pb::RecipientKind::Office,
        };
        pb::Notification {
            name: n.seq.name(),
            sequence: n.seq.0,
            recipient_kind: kind as i32,
            recipient_id: n.recipient.id(),
            recipient_name: n.recipient.name().to_string(),
            channel: channel_to_pb(n.channel) as i32,
            address: n.address.clone(),
            resource: n.resource.clone(),
            reference: n.reference.clone(),
            office: n.office.as_stored(),
            subject: n.subject.clone(),
            text: n.text.clone(),
            state: state_to_pb(n.state) as i32,
            failure_reason: n.failure_reason.clone(),
            attempts: i32::try_from(n.attempts).unwrap_or(i32::MAX),
            queue_time: Some(to_timestamp(n.queued_us)),
            send_time: n.sent_us.map(to_timestamp),
            deliver_time: n.delivered_us.map(to_timestamp),
            fail_time: n.failed_us.map(to_timestamp),
            next_attempt_time: n.next_attempt_us.map(to_timestamp),
        }
    }
}

/// Which notifications a caller may list: `None` for all, else an SQL condition on
/// `$first…` and its values.
fn scope(p: &Principal, first: usize) -> Result<Option<(String, Vec<Value>)>, ApiError> {
    let own = |kind: &str, id: &Option<String>| -> Result<_, ApiError> {
        let id = id.clone().ok_or_else(|| {
            ApiError::PermissionDenied(format!("a {kind} token must name its {kind}"))
        })?;
        Ok(Some((
            format!(
                "(recipient_kind = '{}' AND recipient_id = ${first})",
                kind.to_uppercase()
            ),
            vec![id.into()],
        )))
    };
    // An office sees what it caused (its failed ones are its work) and what it was sent.
    let office = |o: String| {
        Some((
            format!(
                "(office = ${first} OR (recipient_kind = 'OFFICE' AND recipient_id = ${first}))"
            ),
            vec![o.into()],
        ))
    };
    Ok(match p.role {
        Role::Admin | Role::Auditor => None,
        Role::Institution => own("institution", &p.institution)?,
        Role::Member => own("member", &p.member)?,
        Role::RegistryOfficer => office("registry".into()),
        Role::CenterOfficer => office("center".into()),
        Role::Secretary => office("secretariat".into()),
        Role::JudicialOfficer => match &p.authority {
            Some(a) => office(format!("authorities/{a}")),
            // A token without an authority serves every authority of the province.
            None => Some((
                "(office LIKE 'authorities/%' OR (recipient_kind = 'OFFICE' AND \
                 recipient_id LIKE 'authorities/%'))"
                    .into(),
                vec![],
            )),
        },
        Role::Service => {
            return Err(ApiError::PermissionDenied(
                "a service follows StreamNotifications; it does not list".into(),
            ));
        }
    })
}

/// Marks the queued ones of `batch` SENT (handed to a gateway) in one write, and returns
/// them as they now stand.
async fn mark_sent(
    db: &Db,
    channel: Channel,
    mut batch: Vec<Notification>,
) -> Result<Vec<Notification>, ApiError> {
    let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
        return Ok(batch);
    };
    if batch.iter().all(|n| n.state != State::Queued) {
        return Ok(batch);
    }
    let (first, last) = (first.seq.0, last.seq.0);
    let txn = db.begin_write().await?;
    let now = txn.now_micros();
    let sent = store::query(
        &txn,
        &format!(
            "SELECT {COLUMNS} FROM notification WHERE channel = $1 AND seq >= $2 AND seq <= $3 \
             AND state = 'QUEUED'"
        ),
        vec![channel.as_str().into(), first.into(), last.into()],
    )
    .await?;
    for v in &sent {
        let mut n = v.value.clone();
        n.state = State::Sent;
        n.sent_us = Some(now);
        n.attempts += 1;
        store::save(&txn, n.seq, v.version, &n).await?;
    }
    mosharekat_platform::db::commit(txn).await?;
    for n in &mut batch {
        if sent.iter().any(|s| s.value.seq == n.seq) {
            n.state = State::Sent;
            n.sent_us = Some(now);
            n.attempts += 1;
        }
    }
    Ok(batch)
}

type StreamItem = Result<pb::StreamNotificationsResponse, Status>;

#[tonic::async_trait]
impl NotificationService for NotificationApi {
    type StreamNotificationsStream = ReceiverStream<StreamItem>;

    #[tracing::instrument(skip_all)]
    async fn stream_notifications(
        &self,
        request: Request<pb::StreamNotificationsRequest>,
    ) -> Result<Response<Self::StreamNotificationsStream>, Status> {
        let ctx = CallContext::from_request(&request)?;
        ctx.require(&[Role::Service])?;
        let req = request.into_inner();
        if req.after_sequence < 0 {
            return Err(ApiError::invalid("after_sequence", "must not be negative").into());
        }
        let channel = match pb::NotificationChannel::try_from(req.channel) {
            Ok(pb::NotificationChannel::Sms) => Channel::Sms,
            Ok(pb::NotificationChannel::ENotice) => Channel::ENotice,
            Ok(pb::NotificationChannel::Email) => {
                return Err(ApiError::invalid(
                    "channel",
                    "e-mail is sent by the service itself; a gateway follows SMS or E_NOTICE",
                )
                .into());
            }
            _ => return Err(ApiError::invalid("channel", "must be SMS or E_NOTICE").into()),
        };
        // Polled only: a notification is queued by whichever replica made the change.
        let db = self.db.clone();
        let stream = follow(
            req.after_sequence,
            STREAM_BATCH as usize,
            self.poll,
            Wakers::default(),
            move |after| {
                let db = db.clone();
                async move {
                    let queued =
                        store::for_gateway(db.conn(), channel, after, STREAM_BATCH).await?;
                    let sent = mark_sent(&db, channel, queued).await?;
                    Ok(sent
                        .iter()
                        .map(|n| {
                            let item = pb::StreamNotificationsResponse {
                                notification: Some(n.into()),
                            };
                            (n.seq.0, item)
                        })
                        .collect())
                }
            },
        );
        Ok(Response::new(stream))
    }

    #[tracing::instrument(skip_all)]
    async fn acknowledge_notification(
        &self,
        request: Request<pb::AcknowledgeNotificationRequest>,
    ) -> Result<Response<pb::AcknowledgeNotificationResponse>, Status> {
        let ctx = CallContext::from_request(&request)?;
        ctx.require(&[Role::Service])?;
        let req = request.into_inner();
        let seq = Sequence::parse_name(&req.name)
            .ok_or_else(|| ApiError::invalid("name", "must be notifications/{sequence}"))?;
        let target = match state_from_pb(req.state, "state")? {
            Some(s @ (State::Delivered | State::Failed)) => s,
            _ => return Err(ApiError::invalid("state", "must be DELIVERED or FAILED").into()),
        };
        let reason = req.failure_reason.trim().to_string();
        match target {
            State::Failed if reason.is_empty() => {
                return Err(ApiError::invalid("failure_reason", "is required for FAILED").into());
            }
            State::Delivered if !reason.is_empty() => {
                return Err(
                    ApiError::invalid("failure_reason", "must be empty for DELIVERED").into(),
                );
            }
            _ => {}
        }
        if reason.chars().count() > MAX_REASON || reason.chars().any(char::is_control) {
            return Err(ApiError::invalid(
                "failure_reason",
                "must be one line of at most 500 characters",
            )
            .into());
        }
        let checked = change::open(&self.db, &ctx, &Notifications, &seq)
            .await?
            .authorise(|_| true)?
            .check_etag("")?;
        let current = checked.current().clone();
        // A repeated acknowledgement changes nothing (the change is rolled back unused).
        if current.state == target {
            return Ok(Response::new(pb::AcknowledgeNotificationResponse {
                notification: Some((&current).into()),
            }));
        }
        if !current.channel.is_gateway() {
            return Err(ApiError::precondition(
                "NOTIFICATION_NOT_FOR_GATEWAY",
                format!(
                    "{} is an e-mail, which the service delivers itself",
                    seq.name()
                ),
                "این اعلان رایانامه است و سامانه خود آن را می‌فرستد.",
            )
            .into());
        }
        if current.state.is_final() {
            return Err(ApiError::precondition(
                "NOTIFICATION_ALREADY_FINAL",
                format!(
                    "{} is already {}; it cannot become {}",
                    seq.name(),
                    current.state.as_str(),
                    target.as_str()
                ),
                "وضعیت نهایی این اعلان پیش‌تر ثبت شده است و تغییر نمی‌کند.",
            )
            .into());
        }
        let now = checked.txn().now_micros();
        let mut next = current;
        next.state = target;
        next.next_attempt_us = None;
        next.sent_us = next.sent_us.or(Some(now));
        next.attempts = next.attempts.max(1);
        match target {
            State::Delivered => next.delivered_us = Some(now),
            _ => {
                next.failed_us = Some(now);
                next.failure_reason = reason;
            }
        }
        let saved = checked.save(next).await?.commit().await?;
        Ok(Response::new(pb::AcknowledgeNotificationResponse {
            notification: Some((&saved.value).into()),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_notifications(
        &self,
        request: Request<pb::ListNotificationsRequest>,
    ) -> Result<Response<pb::ListNotificationsResponse>, Status> {
        let ctx = CallContext::from_request(&request)?;
        let req = request.into_inner();
        let size = pagination::page_size(req.page_size, "page_size")?;
        let state = state_from_pb(req.state, "state")?;
        if req.resource.len() > 200 || req.resource.chars().any(char::is_control) {
            return Err(ApiError::invalid("resource", "is not a resource name").into());
        }
        let mut conds = Vec::new();
        let mut values: Vec<Value> = Vec::new();
        let scope = scope(&ctx.principal, 1)?;
        let scope_key = match &scope {
            None => "all".to_string(),
            Some((sql, v)) => format!("{sql}|{v:?}"),
        };
        if let Some((sql, v)) = scope {
            conds.push(sql);
            values.extend(v);
        }
        if let Some(s) = state {
            values.push(s.as_str().into());
            conds.push(format!("state = ${}", values.len()));
        }
        if !req.resource.is_empty() {
            values.push(req.resource.clone().into());
            conds.push(format!("resource = ${}", values.len()));
        }
        let filters = pagination::fingerprint(&[
            "notifications",
            &scope_key,
            state.map_or("", State::as_str),
            &req.resource,
        ]);
        let after: i64 = pagination::decode(&req.page_token, &filters, "page_token")?.unwrap_or(0);
        values.push(after.into());
        conds.push(format!("seq > ${}", values.len()));
        values.push((size as i64 + 1).into());
        let sql = format!(
            "SELECT {COLUMNS} FROM notification WHERE {} ORDER BY seq LIMIT ${}",
            conds.join(" AND "),
            values.len()
        );
        let mut rows: Vec<Notification> = store::query(self.db.conn(), &sql, values)
            .await?
            .into_iter()
            .map(|v| v.value)
            .collect();
        let next_page_token = pagination::next_page(&mut rows, size, &filters, |n| n.seq.0);
        Ok(Response::new(pb::ListNotificationsResponse {
            notifications: rows.iter().map(Into::into).collect(),
            next_page_token,
        }))
    }
}
