//! The registry as a peer: down fails fast and recovers; an aged connection fails no call.

use super::*;

on_both_databases!(
    registry_down_fails_fast_and_recovers,
    a_peer_connection_reaching_its_age_fails_no_call,
);

async fn registry_down_fails_fast_and_recovers(b: Backend) {
    let mut e = env(b).await;
    let inst = e
        .institution(7, &[reg::PermittedAction::FileComplaint])
        .await;
    let mut c = e.cases.clone();
    let f = e
        .draft(&inst, complaint(pb::FilingKind::Complaint, true))
        .await;
    let registry = e.registry.take().unwrap();
    let addr = registry.addr;
    registry.stop().await.unwrap();
    let mut req = e.as_inst(
        &inst,
        pb::SubmitFilingRequest {
            name: f.name.clone(),
            etag: String::new(),
        },
    );
    req.set_timeout(Duration::from_secs(10));
    let started = Instant::now();
    let err = c.submit_filing(req).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    // Latency is printed, not asserted: a timed assertion fails on a loaded machine
    // without the code being wrong. The right code above is the check.
    eprintln!("failed after {:?}", started.elapsed());
    // The registry returns on the same address; the referral service recovers by itself.
    let mut s = RunningRegistry::settings(&e.reg_db.url, &e.keys.public_key);
    s.server.listen = Some(addr);
    e.registry = Some(RunningRegistry::start(s).await.unwrap());
    let start = Instant::now();
    loop {
        match e.submit(&inst, &f, false).await {
            Ok(f) => {
                eprintln!("recovered after {:?}", start.elapsed());
                assert_eq!(f.state, pb::FilingState::Submitted as i32);
                break;
            }
            Err(s)
                if s.code() == Code::Unavailable && start.elapsed() < Duration::from_secs(10) =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(s) => panic!("did not recover: {s:?}"),
        }
    }
}

/// The registry closes connections at a short age (1 s here, 5 min in production): the
/// referral service's calls to it, made at every moment around that age, all succeed.
async fn a_peer_connection_reaching_its_age_fails_no_call(b: Backend) {
    let e = env_with(b, Clock::system(), |s| {
        s.server.max_connection_age = Duration::from_secs(1).into();
    })
    .await;
    let inst = e
        .institution(51, &[reg::PermittedAction::FileComplaint])
        .await;
    let mut failures = Vec::new();
    // Pauses around the age, so that calls meet connections about to close, closing and
    // just closed. Bounded: 14 calls.
    for (i, pause_ms) in [
        0u64, 950, 1000, 1050, 1100, 1200, 1500, 990, 1010, 1030, 2100, 1000, 1040, 0,
    ]
    .into_iter()
    .enumerate()
    {
        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
        let f = e
            .draft(&inst, complaint(pb::FilingKind::Complaint, true))
            .await;
        if let Err(s) = e.submit(&inst, &f, false).await {
            failures.push(format!(
                "call {i} after {pause_ms} ms: {:?} {}",
                s.code(),
                s.message()
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
