//! A gateway follows the stream over a real gRPC connection, across restarts of the server
//! (its runtime dropped, a new one on the same database) and of itself (reconnecting with
//! the last sequence it saw), and loses or repeats nothing; acknowledgements and lists.

use std::net::SocketAddr;
use std::time::Duration;

use tonic::transport::{Channel as Conn, Server};
use tonic::{Code, Request, Status};
use tonic_types::StatusExt as _;

use mosharekat_api::common::v1 as pb;
use mosharekat_notify::{Delivery, NotificationApi, enqueue};
use mosharekat_platform::auth::{Principal, Role};
use mosharekat_platform::clock::Clock;
use mosharekat_platform::db::{Db, DbOptions};
use mosharekat_platform::testing::Backend;
use pb::notification_service_client::NotificationServiceClient;
use pb::notification_service_server::NotificationServiceServer;

use crate::support::{Env, env, offered};

on_both_databases!(
    a_gateway_stream_survives_restarts_of_either_side_with_nothing_lost_or_repeated,
    acknowledgements_are_idempotent_and_checked,
    people_list_their_own_and_an_office_its_failed_ones,
);

/// Stands in for the platform's authentication layer: the caller named by test headers.
#[allow(clippy::result_large_err)]
fn caller(mut req: Request<()>) -> Result<Request<()>, Status> {
    let h = |k: &str| {
        req.metadata()
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let role: Role = h("x-test-role")
        .ok_or_else(|| Status::unauthenticated("no role"))?
        .parse()
        .map_err(Status::unauthenticated)?;
    let p = Principal {
        subject: h("x-test-subject").unwrap_or_else(|| "tester".into()),
        role,
        institution: h("x-test-institution"),
        member: h("x-test-member"),
        service: (role == Role::Service).then(|| "sms-gateway".into()),
        authority: h("x-test-authority"),
        on_behalf_of: None,
    };
    req.extensions_mut().insert(p);
    Ok(req)
}

/// A server in its own runtime, as a separate process would be: stopping it drops the
/// runtime, its connections and its streams at once.
struct TestServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    fn start(url: String, clock: Clock) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let db = Db::connect(&url, &DbOptions::default())
                    .await
                    .unwrap()
                    .with_clock(clock);
                let api = NotificationApi::new(db).with_poll_interval(Duration::from_millis(30));
                let incoming = tokio_stream::wrappers::TcpListenerStream::new(
                    tokio::net::TcpListener::from_std(listener).unwrap(),
                );
                tokio::select! {
                    r = Server::builder()
                        .add_service(NotificationServiceServer::with_interceptor(api, caller))
                        .serve_with_incoming(incoming) => r.unwrap(),
                    _ = stopped => {}
                }
            });
            rt.shutdown_timeout(Duration::from_secs(5));
        });
        Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }

    async fn client(&self) -> NotificationServiceClient<Conn> {
        let ch = Conn::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        NotificationServiceClient::new(ch)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

fn as_caller<T>(msg: T, headers: &[(&'static str, &str)]) -> Request<T> {
    let mut r = Request::new(msg);
    for (k, v) in headers {
        r.metadata_mut().insert(*k, v.parse().unwrap());
    }
    r
}

const GATEWAY: &[(&str, &str)] = &[("x-test-role", "SERVICE")];

async fn queue_sms(e: &Env, numbers: std::ops::Range<u64>) -> Vec<i64> {
    let txn = e.db.begin_write().await.unwrap();
    let mut seqs = Vec::new();
    for n in numbers {
        seqs.push(enqueue(&txn, offered(n, Delivery::Sms)).await.unwrap().0);
        // Another channel between: the SMS gateway does not see it.
        enqueue(&txn, offered(n, Delivery::ENotice)).await.unwrap();
    }
    txn.commit().await.unwrap();
    seqs
}

async fn follow(
    server: &TestServer,
    after: i64,
) -> tonic::Streaming<pb::StreamNotificationsResponse> {
    server
        .client()
        .await
        .stream_notifications(as_caller(
            pb::StreamNotificationsRequest {
                after_sequence: after,
                channel: pb::NotificationChannel::Sms as i32,
            },
            GATEWAY,
        ))
        .await
        .unwrap()
        .into_inner()
}

/// The next `n` notifications of the stream.
async fn take(
    s: &mut tonic::Streaming<pb::StreamNotificationsResponse>,
    n: usize,
) -> Vec<pb::Notification> {
    let mut out = Vec::new();
    while out.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(20), s.message())
            .await
            .expect("the stream delivers within 20 s")
            .unwrap()
            .expect("the stream is open");
        out.push(m.notification.unwrap());
    }
    out
}

async fn a_gateway_stream_survives_restarts_of_either_side_with_nothing_lost_or_repeated(
    b: Backend,
) {
    let e = env(b).await;
    let mut expected = queue_sms(&e, 1..4).await;
    let mut seen: Vec<i64> = Vec::new();

    let server = TestServer::start(e.t.url.clone(), e.clock.clone());
    let mut stream = follow(&server, 0).await;
    let got = take(&mut stream, 3).await;
    assert!(
        got.iter()
            .all(|n| n.channel == pb::NotificationChannel::Sms as i32)
    );
    assert!(
        got.iter()
            .all(|n| n.state == pb::NotificationState::Sent as i32)
    );
    assert_eq!(got[0].reference, "ارجاع ۱");
    seen.extend(got.iter().map(|n| n.sequence));
    // Queued while the stream is open: it follows.
    expected.extend(queue_sms(&e, 4..5).await);
    seen.extend(take(&mut stream, 1).await.iter().map(|n| n.sequence));

    // The server goes down; two more are queued meanwhile; a new server on the same
    // database; the gateway reconnects with the last sequence it saw.
    server.stop();
    let end = tokio::time::timeout(Duration::from_secs(20), stream.message())
        .await
        .expect("the stream ends with its server");
    assert!(!matches!(end, Ok(Some(_))), "{end:?}");
    expected.extend(queue_sms(&e, 5..7).await);
    let server = TestServer::start(e.t.url.clone(), e.clock.clone());
    let mut stream = follow(&server, *seen.last().unwrap()).await;
    seen.extend(take(&mut stream, 2).await.iter().map(|n| n.sequence));

    // The gateway restarts: its stream dropped, a new connection from the last it saw.
    drop(stream);
    expected.extend(queue_sms(&e, 7..8).await);
    let mut stream = follow(&server, *seen.last().unwrap()).await;
    seen.extend(take(&mut stream, 1).await.iter().map(|n| n.sequence));
    // Nothing more is waiting.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), stream.message())
            .await
            .is_err(),
        "nothing repeated"
    );
    assert_eq!(seen, expected, "every SMS once, in sequence order");

    // The gateway dies having recorded only the first of a batch the server had already
    // handed out (marked SENT): from its last sequence it gets the rest again, once.
    drop(stream);
    let batch = queue_sms(&e, 8..11).await;
    let mut stream = follow(&server, *seen.last().unwrap()).await;
    let first = take(&mut stream, 1).await;
    assert_eq!(first[0].sequence, batch[0]);
    drop(stream);
    let mut stream = follow(&server, batch[0]).await;
    let rest = take(&mut stream, 2).await;
    assert!(
        rest.iter()
            .all(|n| n.state == pb::NotificationState::Sent as i32)
    );
    assert_eq!(
        rest.iter().map(|n| n.sequence).collect::<Vec<_>>(),
        batch[1..]
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(300), stream.message())
            .await
            .is_err(),
        "nothing repeated"
    );
    drop(stream);
    server.stop();

    // A stream asked for e-mail, a bad channel or a negative sequence is refused.
    let server = TestServer::start(e.t.url.clone(), e.clock.clone());
    let mut c = server.client().await;
    for (req, field) in [
        ((0, pb::NotificationChannel::Email as i32), "channel"),
        ((0, 0), "channel"),
        ((0, 99), "channel"),
        ((-1, pb::NotificationChannel::Sms as i32), "after_sequence"),
    ] {
        let err = c
            .stream_notifications(as_caller(
                pb::StreamNotificationsRequest {
                    after_sequence: req.0,
                    channel: req.1,
                },
                GATEWAY,
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        let details = err.get_error_details();
        let fields: Vec<String> = details
            .bad_request()
            .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
            .unwrap_or_default();
        assert_eq!(fields, [field]);
    }
    let err = c
        .stream_notifications(as_caller(
            pb::StreamNotificationsRequest {
                after_sequence: 0,
                channel: pb::NotificationChannel::Sms as i32,
            },
            &[
                ("x-test-role", "INSTITUTION"),
                ("x-test-institution", "inst-1"),
            ],
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    server.stop();
}

fn ack(
    name: &str,
    state: pb::NotificationState,
    reason: &str,
) -> pb::AcknowledgeNotificationRequest {
    pb::AcknowledgeNotificationRequest {
        name: name.into(),
        state: state as i32,
        failure_reason: reason.into(),
    }
}

async fn audit_count(e: &Env) -> i64 {
    use sea_orm::ConnectionTrait;
    let r =
        e.db.conn()
            .query_one_raw(e.db.stmt("SELECT COUNT(*) AS n FROM audit_log", []))
            .await
            .unwrap()
            .unwrap();
    r.try_get("", "n").unwrap()
}

async fn acknowledgements_are_idempotent_and_checked(b: Backend) {
    use pb::NotificationState as S;
    let e = env(b).await;
    queue_sms(&e, 1..3).await; // 1, 3: SMS; 2, 4: e-notice
    let txn = e.db.begin_write().await.unwrap();
    enqueue(
        &txn,
        offered(9, crate::support::email_to("a@b.example", "")),
    )
    .await
    .unwrap(); // 5
    txn.commit().await.unwrap();
    let server = TestServer::start(e.t.url.clone(), e.clock.clone());
    let mut c = server.client().await;

    let n = c
        .acknowledge_notification(as_caller(ack("notifications/1", S::Delivered, ""), GATEWAY))
        .await
        .unwrap()
        .into_inner()
        .notification
        .unwrap();
    assert_eq!(n.state, S::Delivered as i32);
    assert!(n.deliver_time.is_some() && n.send_time.is_some());
    assert_eq!(
        audit_count(&e).await,
        1,
        "the acknowledgement is a change, audited"
    );
    // Repeated: the same answer, nothing changed.
    let again = c
        .acknowledge_notification(as_caller(ack("notifications/1", S::Delivered, ""), GATEWAY))
        .await
        .unwrap()
        .into_inner()
        .notification
        .unwrap();
    assert_eq!(again, n);
    assert_eq!(audit_count(&e).await, 1);
    // The other outcome after a final one is refused, with its reason code.
    let err = c
        .acknowledge_notification(as_caller(ack("notifications/1", S::Failed, "x"), GATEWAY))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(
        err.get_error_details().error_info().unwrap().reason,
        "NOTIFICATION_ALREADY_FINAL"
    );
    // FAILED with its reason; repeated, the first reason stays.
    let failed = c
        .acknowledge_notification(as_caller(
            ack("notifications/2", S::Failed, "شماره در دسترس نیست"),
            GATEWAY,
        ))
        .await
        .unwrap()
        .into_inner()
        .notification
        .unwrap();
    assert_eq!(failed.failure_reason, "شماره در دسترس نیست");
    assert!(failed.fail_time.is_some());
    let again = c
        .acknowledge_notification(as_caller(
            ack("notifications/2", S::Failed, "other"),
            GATEWAY,
        ))
        .await
        .unwrap()
        .into_inner()
        .notification
        .unwrap();
    assert_eq!(again.failure_reason, "شماره در دسترس نیست");
    // E-mail is not the gateway's to acknowledge.
    let err = c
        .acknowledge_notification(as_caller(ack("notifications/5", S::Delivered, ""), GATEWAY))
        .await
        .unwrap_err();
    assert_eq!(
        err.get_error_details().error_info().unwrap().reason,
        "NOTIFICATION_NOT_FOR_GATEWAY"
    );
    // Bad input names the field; an unknown one is NOT_FOUND.
    for (req, field) in [
        (ack("notification/1", S::Delivered, ""), "name"),
        (ack("notifications/x", S::Delivered, ""), "name"),
        (ack("notifications/3", S::Queued, ""), "state"),
        (ack("notifications/3", S::Unspecified, ""), "state"),
        (ack("notifications/3", S::Failed, " "), "failure_reason"),
        (
            ack("notifications/3", S::Delivered, "why"),
            "failure_reason",
        ),
        (ack("notifications/3", S::Failed, "a\nb"), "failure_reason"),
    ] {
        let err = c
            .acknowledge_notification(as_caller(req, GATEWAY))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
        assert_eq!(
            err.get_error_details()
                .bad_request()
                .unwrap()
                .field_violations[0]
                .field,
            field
        );
    }
    let err = c
        .acknowledge_notification(as_caller(
            ack("notifications/99", S::Delivered, ""),
            GATEWAY,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = c
        .acknowledge_notification(as_caller(
            ack("notifications/3", S::Delivered, ""),
            &[("x-test-role", "ADMIN")],
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    server.stop();
}

async fn list(
    c: &mut NotificationServiceClient<Conn>,
    who: &[(&'static str, &str)],
    state: pb::NotificationState,
    page_size: i32,
) -> Result<Vec<i64>, Status> {
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_notifications(as_caller(
                pb::ListNotificationsRequest {
                    page_size,
                    page_token: token.clone(),
                    state: state as i32,
                    resource: String::new(),
                },
                who,
            ))
            .await?
            .into_inner();
        all.extend(page.notifications.iter().map(|n| n.sequence));
        if page.next_page_token.is_empty() {
            return Ok(all);
        }
        token = page.next_page_token;
    }
}

async fn people_list_their_own_and_an_office_its_failed_ones(b: Backend) {
    use mosharekat_notify::{Office, Recipient};
    use pb::NotificationState as S;
    let e = env(b).await;
    let txn = e.db.begin_write().await.unwrap();
    enqueue(&txn, offered(1, Delivery::Sms)).await.unwrap(); // 1: inst-1, center
    let mut other = offered(2, Delivery::Sms);
    other.recipient = Recipient::Institution {
        id: "inst-2".into(),
        name: "موسسه امید".into(),
    };
    other.office = Office::Registry;
    enqueue(&txn, other).await.unwrap(); // 2: inst-2, registry
    let mut member = offered(3, Delivery::Sms);
    member.recipient = Recipient::Member {
        id: "m-7".into(),
        name: "زهرا کریمی".into(),
    };
    member.office = Office::Authority("tehran-court-1".into());
    enqueue(&txn, member).await.unwrap(); // 3: m-7, an authority
    for n in 4..9 {
        enqueue(&txn, offered(n, Delivery::Sms)).await.unwrap(); // 4..8: inst-1, center
    }
    txn.commit().await.unwrap();
    let server = TestServer::start(e.t.url.clone(), e.clock.clone());
    let mut c = server.client().await;
    for seq in [4, 6] {
        c.acknowledge_notification(as_caller(
            ack(
                &format!("notifications/{seq}"),
                S::Failed,
                "number unreachable",
            ),
            GATEWAY,
        ))
        .await
        .unwrap();
    }
    let inst1 = [
        ("x-test-role", "INSTITUTION"),
        ("x-test-institution", "inst-1"),
    ];
    assert_eq!(
        list(&mut c, &inst1, S::Unspecified, 2).await.unwrap(),
        [1, 4, 5, 6, 7, 8],
        "its own, paged by 2"
    );
    let inst2 = [
        ("x-test-role", "INSTITUTION"),
        ("x-test-institution", "inst-2"),
    ];
    assert_eq!(list(&mut c, &inst2, S::Unspecified, 0).await.unwrap(), [2]);
    let m7 = [("x-test-role", "MEMBER"), ("x-test-member", "m-7")];
    assert_eq!(list(&mut c, &m7, S::Unspecified, 0).await.unwrap(), [3]);
    let admin = [("x-test-role", "ADMIN")];
    assert_eq!(
        list(&mut c, &admin, S::Unspecified, 3).await.unwrap(),
        (1..=8).collect::<Vec<_>>()
    );
    // The office that caused them sees its failed ones as work; another office does not.
    let center = [("x-test-role", "CENTER_OFFICER")];
    assert_eq!(list(&mut c, &center, S::Failed, 0).await.unwrap(), [4, 6]);
    let registry = [("x-test-role", "REGISTRY_OFFICER")];
    assert!(
        list(&mut c, &registry, S::Failed, 0)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        list(&mut c, &registry, S::Unspecified, 0).await.unwrap(),
        [2]
    );
    let court = [
        ("x-test-role", "JUDICIAL_OFFICER"),
        ("x-test-authority", "tehran-court-1"),
    ];
    assert_eq!(list(&mut c, &court, S::Unspecified, 0).await.unwrap(), [3]);
    let other_court = [
        ("x-test-role", "JUDICIAL_OFFICER"),
        ("x-test-authority", "x"),
    ];
    assert!(
        list(&mut c, &other_court, S::Unspecified, 0)
            .await
            .unwrap()
            .is_empty()
    );

    // A token of one listing does not continue another; bad input names the field.
    let page = c
        .list_notifications(as_caller(
            pb::ListNotificationsRequest {
                page_size: 1,
                ..Default::default()
            },
            &inst1,
        ))
        .await
        .unwrap()
        .into_inner();
    for (req, field) in [
        (
            pb::ListNotificationsRequest {
                page_size: 1,
                page_token: page.next_page_token.clone(),
                ..Default::default()
            },
            "page_token",
        ),
        (
            pb::ListNotificationsRequest {
                page_size: -1,
                ..Default::default()
            },
            "page_size",
        ),
        (
            pb::ListNotificationsRequest {
                state: 42,
                ..Default::default()
            },
            "state",
        ),
    ] {
        let err = c
            .list_notifications(as_caller(req, &inst2))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}");
        assert_eq!(
            err.get_error_details()
                .bad_request()
                .unwrap()
                .field_violations[0]
                .field,
            field
        );
    }
    let err = list(&mut c, GATEWAY, S::Unspecified, 0).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    server.stop();
}
