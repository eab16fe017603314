//! Licence loss: a representative whose institution's licence is suspended, revoked or
//! expired no longer fills the seat; it is flagged vacant.

use mosharekat_api::registry::v1::{LicenceEvent, LicenceEventKind};
use mosharekat_platform::db::WriteTxn;
use mosharekat_platform::error::ApiError;
use mosharekat_registry_client::events::{LicenceEventHandler, context_for};

use crate::app::Meetings;

pub const STREAM: &str = "registry.licence_events";

#[derive(Debug, Clone, Copy)]
pub struct VacateOnLicenceLoss;

#[async_trait::async_trait]
impl LicenceEventHandler for VacateOnLicenceLoss {
    async fn handle(&self, txn: &WriteTxn, e: &LicenceEvent) -> Result<(), ApiError> {
        let why = match LicenceEventKind::try_from(e.kind) {
            Ok(LicenceEventKind::Suspended) => "the institution's licence was suspended",
            Ok(LicenceEventKind::Revoked) => "the institution's licence was revoked",
            Ok(LicenceEventKind::Expired) => "the institution's licence expired",
            _ => return Ok(()),
        };
        // Done by this service, for whoever changed the licence.
        let ctx = context_for("meeting/licence-events", e);
        let n = Meetings::vacate_seats_of(
            txn,
            e.institution.trim_start_matches("institutions/"),
            why,
            &ctx,
        )
        .await?;
        if n > 0 {
            tracing::info!(institution = %e.institution, seats = n, "representatives' seats flagged vacant");
        }
        Ok(())
    }
}
