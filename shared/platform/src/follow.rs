//! Following a gap-free sequence (the registry's licence events and calendar changes, each
//! service's queued notifications): replay what is stored after the follower's last
//! sequence, then each new entry as it is written. The follower wakes when this process
//! commits one and, so that another replica's are not missed, at least once per `poll`.

use std::future::Future;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::error::ApiError;

/// What wakes a follower before its poll, and what ends it.
#[derive(Debug, Default)]
pub struct Wakers {
    /// Changed by this process's commits to the sequence; `None`: poll only.
    pub committed: Option<watch::Receiver<i64>>,
    /// Set when the service stops: the stream then ends.
    pub stopping: Option<watch::Receiver<bool>>,
}

/// Streams every entry after `after`, then each new one, in sequence order. `fetch(last)`
/// returns the next entries after `last` (at most `batch`), each with its sequence. A fetch
/// error ends the stream with that error, so the caller resumes from the last it saw; a
/// dropped receiver ends the task.
pub fn follow<M, F, Fut>(
    after: i64,
    batch: usize,
    poll: Duration,
    wakers: Wakers,
    mut fetch: F,
) -> ReceiverStream<Result<M, Status>>
where
    M: Send + 'static,
    F: FnMut(i64) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Vec<(i64, M)>, ApiError>> + Send,
{
    let (tx, rx) = mpsc::channel(batch.max(1));
    let Wakers {
        mut committed,
        mut stopping,
    } = wakers;
    tokio::spawn(async move {
        let mut last = after;
        loop {
            if stopping.as_ref().is_some_and(|s| *s.borrow()) {
                return;
            }
            let entries = match fetch(last).await {
                Ok(e) => e,
                Err(e) => {
                    let _ = tx.send(Err(Status::from(e))).await;
                    return;
                }
            };
            if entries.is_empty() {
                tokio::select! {
                    _ = woken(&mut committed) => {}
                    _ = tokio::time::sleep(poll) => {}
                    _ = tx.closed() => return,
                    _ = stopped(&mut stopping) => return,
                }
                continue;
            }
            for (seq, entry) in entries {
                if tx.send(Ok(entry)).await.is_err() {
                    return;
                }
                last = seq;
            }
        }
    });
    ReceiverStream::new(rx)
}

/// Returns when this process commits; never, if nothing tells it (the poll then serves).
async fn woken(rx: &mut Option<watch::Receiver<i64>>) {
    if let Some(r) = rx
        && r.changed().await.is_ok()
    {
        return;
    }
    std::future::pending().await
}

/// Returns when the service stops (or whatever said so is gone).
async fn stopped(rx: &mut Option<watch::Receiver<bool>>) {
    match rx {
        Some(r) => {
            let _ = r.wait_for(|s| *s).await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use futures::StreamExt;

    use super::*;

    type Entries = Arc<Mutex<Vec<i64>>>;

    /// A store of entries numbered from 1 that the test appends to, and its reader (at
    /// most two after a sequence, so that replays come in several batches).
    fn store() -> (Entries, impl Fn(i64) -> Vec<(i64, i64)> + Clone) {
        let entries = Entries::default();
        let read = entries.clone();
        let after = move |last: i64| {
            let e = read.lock().unwrap();
            e.iter()
                .filter(|s| **s > last)
                .take(2)
                .map(|s| (*s, *s))
                .collect()
        };
        (entries, after)
    }

    #[tokio::test]
    async fn replays_in_batches_then_follows_commits_without_gaps() {
        let (entries, after) = store();
        entries.lock().unwrap().extend(1..=5);
        let (commit_tx, commit_rx) = watch::channel(5);
        let wakers = Wakers {
            committed: Some(commit_rx),
            stopping: None,
        };
        // A poll far away: only the commit can wake it in time.
        let mut s = follow(2, 2, Duration::from_secs(3600), wakers, move |last| {
            let got = after(last);
            async move { Ok(got) }
        });
        for want in 3..=5 {
            assert_eq!(s.next().await.unwrap().unwrap(), want);
        }
        entries.lock().unwrap().extend(6..=7);
        commit_tx.send(7).unwrap();
        assert_eq!(s.next().await.unwrap().unwrap(), 6);
        assert_eq!(s.next().await.unwrap().unwrap(), 7);
    }

    #[tokio::test]
    async fn another_replicas_entries_are_found_by_polling() {
        let (entries, after) = store();
        let mut s = follow(
            0,
            2,
            Duration::from_millis(5),
            Wakers::default(),
            move |last| {
                let got = after(last);
                async move { Ok(got) }
            },
        );
        entries.lock().unwrap().push(1);
        assert_eq!(s.next().await.unwrap().unwrap(), 1);
    }

    #[tokio::test]
    async fn a_failed_read_ends_the_stream_with_its_error() {
        let mut s = follow(0, 2, Duration::from_secs(1), Wakers::default(), |_| async {
            Err::<Vec<(i64, i64)>, _>(ApiError::Unavailable("down".into()))
        });
        let e = s.next().await.unwrap().unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unavailable);
        assert!(s.next().await.is_none());
    }

    #[tokio::test]
    async fn stopping_the_service_ends_the_stream() {
        let (stop_tx, stop_rx) = watch::channel(false);
        let wakers = Wakers {
            committed: None,
            stopping: Some(stop_rx),
        };
        let mut s = follow(0, 2, Duration::from_secs(3600), wakers, |_| async {
            Ok(Vec::<(i64, i64)>::new())
        });
        stop_tx.send(true).unwrap();
        assert!(s.next().await.is_none());
    }
}
