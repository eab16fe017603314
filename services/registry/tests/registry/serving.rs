//! Serving: health turns NOT_SERVING before the drain.

use super::*;

on_both_databases!(health_turns_not_serving_before_the_drain,);

async fn health_turns_not_serving_before_the_drain(b: Backend) {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
    let keys = TestKeys::new().unwrap();
    let db = TestDb::new(b).await.unwrap();
    let mut s = RunningRegistry::settings(&db.url, &keys.public_key);
    s.server.shutdown_drain_delay = Duration::from_millis(1500).into();
    let reg = RunningRegistry::start(s).await.unwrap();
    let mut h = HealthClient::new(
        Channel::from_shared(reg.uri())
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    let check = |name: &str| HealthCheckRequest {
        service: name.into(),
    };
    for name in [
        "",
        "mosharekat.registry.v1.RegistryService",
        "mosharekat.common.v1.AuditService",
        "mosharekat.registry.v1.CalendarService",
        "mosharekat.common.v1.NotificationService",
    ] {
        let st = h.check(check(name)).await.unwrap().into_inner().status;
        assert_eq!(st, ServingStatus::Serving as i32, "{name}");
    }
    let stopping = tokio::spawn(reg.stop());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let st = h
        .check(check("mosharekat.registry.v1.RegistryService"))
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        st,
        ServingStatus::NotServing as i32,
        "NOT_SERVING while still answering, before the drain"
    );
    stopping.await.unwrap().unwrap();
}
