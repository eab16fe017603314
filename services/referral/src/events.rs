//! Licence loss: when the registry suspends, revokes or expires a licence, the
//! institution's open referrals are recalled, in the transaction that moves the cursor.

use mosharekat_api::registry::v1::{LicenceEvent, LicenceEventKind};
use mosharekat_platform::db::WriteTxn;
use mosharekat_platform::error::ApiError;
use mosharekat_registry_client::events::{LicenceEventHandler, context_for};

use std::sync::Arc;

use crate::app::App;
use crate::names::InstitutionId;
use crate::notices::Notify;

/// The cursor's name in `event_cursor`.
pub const STREAM: &str = "registry.licence_events";

/// Recalls, with the notices they cause (sent as this deployment notifies).
#[derive(Debug, Clone, Default)]
pub struct RecallOnLicenceLoss {
    pub notify: Arc<Notify>,
}

#[async_trait::async_trait]
impl LicenceEventHandler for RecallOnLicenceLoss {
    async fn handle(&self, txn: &WriteTxn, e: &LicenceEvent) -> Result<(), ApiError> {
        let why = match LicenceEventKind::try_from(e.kind) {
            Ok(LicenceEventKind::Suspended) => "licence suspended",
            Ok(LicenceEventKind::Revoked) => "licence revoked",
            Ok(LicenceEventKind::Expired) => "licence expired",
            _ => return Ok(()),
        };
        let Some(institution) = InstitutionId::from_name(&e.institution) else {
            tracing::warn!(institution = %e.institution, "a licence event names no institution: skipped");
            return Ok(());
        };
        // Done by this service, for whoever changed the licence.
        let ctx = context_for("referral/licence-events", e);
        let n = App::recall_open_referrals(txn, &institution, why, &ctx, &self.notify).await?;
        if n > 0 {
            tracing::info!(institution = %e.institution, recalled = n, reason = why, "open referrals recalled");
        }
        Ok(())
    }
}
