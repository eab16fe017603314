//! A notification is written in the caller's transaction, with a gap-free sequence, and
//! only if its content passes the rules.

use mosharekat_notify::store;
use mosharekat_notify::{Channel, Delivery, Office, Recipient, Sequence, State, enqueue};
use mosharekat_platform::error::ApiError;
use mosharekat_platform::testing::Backend;

use crate::support::{env, offered};

on_both_databases!(
    a_notification_is_stored_as_columns_with_a_gap_free_sequence,
    a_rolled_back_change_notifies_nobody,
    content_that_breaks_the_rules_is_refused_and_nothing_is_written,
    notifications_written_in_step_6_of_the_change_path_commit_with_the_change,
);

async fn a_notification_is_stored_as_columns_with_a_gap_free_sequence(b: Backend) {
    let e = env(b).await;
    let txn = e.db.begin_write().await.unwrap();
    let first = enqueue(&txn, offered(1234, Delivery::Sms)).await.unwrap();
    let second = enqueue(&txn, offered(1235, Delivery::ENotice))
        .await
        .unwrap();
    txn.commit().await.unwrap();
    assert_eq!((first, second), (Sequence(1), Sequence(2)));

    let n = store::get(e.db.conn(), first).await.unwrap().unwrap().value;
    assert_eq!(n.channel, Channel::Sms);
    assert_eq!(n.state, State::Queued);
    assert_eq!(n.reference, "ارجاع ۱۲۳۴");
    assert_eq!(n.resource, "referrals/1234");
    assert_eq!(n.office, Office::Center);
    assert_eq!(
        n.recipient,
        Recipient::Institution {
            id: "inst-1".into(),
            name: "موسسه خیریه مهر".into()
        }
    );
    assert_eq!(
        n.text,
        "موسسه خیریه مهر گرامی، ارجاع ۱۲۳۴ به شما پیشنهاد شد؛ مهلت پاسخ تا پایان ۲۰ اسفند ۱۴۰۴."
    );
    assert_eq!(
        n.queued_us,
        e.clock.now_micros(),
        "the time of the database's clock"
    );
    assert_eq!((n.sent_us, n.delivered_us, n.failed_us), (None, None, None));
    assert_eq!(n.attempts, 0);

    // A rolled-back sequence number is taken again: no gap.
    let txn = e.db.begin_write().await.unwrap();
    assert_eq!(
        enqueue(&txn, offered(1, Delivery::Sms)).await.unwrap(),
        Sequence(3)
    );
    txn.rollback().await.unwrap();
    let txn = e.db.begin_write().await.unwrap();
    assert_eq!(
        enqueue(&txn, offered(2, Delivery::Sms)).await.unwrap(),
        Sequence(3)
    );
    txn.commit().await.unwrap();
    assert_eq!(e.count().await, 3);
}

async fn a_rolled_back_change_notifies_nobody(b: Backend) {
    let e = env(b).await;
    // A change that queues its notification in step 6, then fails before its commit (an
    // error returned with `?` drops the write transaction).
    async fn change_that_fails(db: &mosharekat_platform::db::Db) -> Result<(), ApiError> {
        let txn = db.begin_write().await?;
        enqueue(&txn, offered(1234, Delivery::Sms)).await?;
        Err(ApiError::Aborted("the resource changed meanwhile".into()))
    }
    assert!(change_that_fails(&e.db).await.is_err());
    // An explicit rollback too.
    let txn = e.db.begin_write().await.unwrap();
    enqueue(&txn, offered(1235, Delivery::Sms)).await.unwrap();
    txn.rollback().await.unwrap();
    // The next writer waits for the dropped one's rollback, then sees nothing of it.
    let txn = e.db.begin_write().await.unwrap();
    txn.commit().await.unwrap();
    assert_eq!(e.count().await, 0);
}

async fn content_that_breaks_the_rules_is_refused_and_nothing_is_written(b: Backend) {
    let e = env(b).await;
    let cases = [
        (
            {
                let mut n = offered(1234, Delivery::Sms);
                n.recipient = Recipient::Institution {
                    id: "inst-1".into(),
                    name: "رضا ۰۰۷۶۲۲۹۶۴۵".into(),
                };
                n
            },
            "notification.recipient_name",
        ),
        (
            offered(
                1234,
                crate::support::email_to("info@mehr.example", "کد ملی مدیر: 0076229645"),
            ),
            "notification.text",
        ),
        (
            offered(1234, crate::support::email_to("no-address", "")),
            "notification.address",
        ),
        (
            {
                let mut n = offered(1234, Delivery::Sms);
                n.resource = "not a name".into();
                n
            },
            "notification.resource",
        ),
    ];
    for (n, field) in cases {
        let txn = e.db.begin_write().await.unwrap();
        match enqueue(&txn, n).await {
            Err(ApiError::InvalidArgument(v)) => assert_eq!(v[0].field, field, "{v:?}"),
            other => panic!("{field}: {other:?}"),
        }
        txn.commit().await.unwrap();
    }
    assert_eq!(e.count().await, 0);
}

async fn notifications_written_in_step_6_of_the_change_path_commit_with_the_change(b: Backend) {
    use mosharekat_notify::store::Notifications;
    use mosharekat_platform::change;
    use mosharekat_platform::ctx::CallContext;
    let e = env(b).await;
    let txn = e.db.begin_write().await.unwrap();
    let target = enqueue(&txn, offered(1, Delivery::Sms)).await.unwrap();
    txn.commit().await.unwrap();
    let ctx = CallContext::system("/test/Change");
    // The change path, as a service uses it; its notification goes through `Saved::txn()`.
    let change = |commit: bool| {
        let (db, ctx) = (e.db.clone(), ctx.clone());
        async move {
            let checked = change::open(&db, &ctx, &Notifications, &target)
                .await?
                .authorise(|_| true)?
                .check_etag("")?;
            let mut next = checked.current().clone();
            next.state = State::Delivered;
            let saved = checked.save(next).await?;
            enqueue(saved.txn(), offered(2, Delivery::ENotice)).await?;
            if commit {
                saved.commit().await?;
            }
            Ok::<_, ApiError>(())
        }
    };
    // Saved but not committed (the handler returned early): neither stays.
    change(false).await.unwrap();
    let txn = e.db.begin_write().await.unwrap(); // waits for the rollback
    txn.commit().await.unwrap();
    assert_eq!(e.count().await, 1);
    let n = store::get(e.db.conn(), target).await.unwrap().unwrap();
    assert_eq!((n.version, n.value.state), (1, State::Queued));
    // Committed: both, and the audit record.
    change(true).await.unwrap();
    assert_eq!(e.count().await, 2);
    let n = store::get(e.db.conn(), target).await.unwrap().unwrap();
    assert_eq!((n.version, n.value.state), (2, State::Delivered));
    let v = mosharekat_platform::audit::verify(&e.db).await.unwrap();
    assert_eq!((v.checked, v.first_broken), (1, None));
}
