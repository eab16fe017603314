//! The referral service as its peers call it: with the caller's own SERVICE token, the end
//! user's trace and remaining deadline, and retries of idempotent reads while it is
//! unavailable.

use std::time::Duration;

use mosharekat_api::referral::v1::referral_service_client::ReferralServiceClient;
use mosharekat_platform::client::{
    PeerInterceptor, PeerLink, PeerTarget, Retry, ServiceToken, call, found, peer_error,
};
use mosharekat_platform::ctx::CallContext;
use mosharekat_platform::error::ApiError;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// The referral service's gRPC service name, as its health reports it.
pub const REFERRAL_SERVICE: &str = "mosharekat.referral.v1.ReferralService";

type ReferralClient = ReferralServiceClient<InterceptedService<Channel, PeerInterceptor>>;

/// The referral service, as the meeting service calls it.
#[derive(Clone, Debug)]
pub struct ReferralPeer {
    link: PeerLink,
    interceptor: PeerInterceptor,
    timeout: Duration,
}

impl ReferralPeer {
    pub fn new(target: PeerTarget, token: ServiceToken, timeout: Duration) -> Self {
        Self {
            link: PeerLink::new("the referral service", REFERRAL_SERVICE, target),
            interceptor: PeerInterceptor::new(token),
            timeout,
        }
    }

    fn client(&self, channel: Channel) -> ReferralClient {
        ReferralServiceClient::with_interceptor(channel, self.interceptor.clone())
    }

    /// Whether a filing or referral (`filings/{id}`, `referrals/{id}`) exists.
    pub async fn case_exists(&self, ctx: &CallContext, name: &str) -> Result<bool, ApiError> {
        Ok(self.case_institution(ctx, name).await?.is_some())
    }

    /// The institution (`institutions/{id}`) a filing or referral is of, as the referral
    /// service answers: the filing institution, or the referral's assignee (empty while it
    /// has none). `None` when the case does not exist.
    pub async fn case_institution(
        &self,
        ctx: &CallContext,
        name: &str,
    ) -> Result<Option<String>, ApiError> {
        use mosharekat_api::referral::v1 as rf;
        let r = if name.starts_with("filings/") {
            let msg = rf::GetFilingRequest {
                name: name.to_owned(),
            };
            call(
                &self.link,
                ctx,
                "mosharekat.referral.v1.ReferralService/GetFiling",
                self.timeout,
                Retry::Idempotent,
                &msg,
                |ch, req| {
                    let mut c = self.client(ch);
                    async move { c.get_filing(req).await }
                },
            )
            .await
            .map(|r| r.filing.map(|f| f.institution).unwrap_or_default())
        } else {
            let msg = rf::GetReferralRequest {
                name: name.to_owned(),
            };
            call(
                &self.link,
                ctx,
                "mosharekat.referral.v1.ReferralService/GetReferral",
                self.timeout,
                Retry::Idempotent,
                &msg,
                |ch, req| {
                    let mut c = self.client(ch);
                    async move { c.get_referral(req).await }
                },
            )
            .await
            .map(|r| r.referral.map(|f| f.institution).unwrap_or_default())
        };
        match r {
            Ok(institution) => Ok(Some(institution)),
            Err(s) => found(Err::<(), _>(s), "the referral service").map(|_| None),
        }
    }

    /// The referral service's statistics for a province and period.
    pub async fn statistics(
        &self,
        ctx: &CallContext,
        msg: mosharekat_api::referral::v1::GetStatisticsRequest,
    ) -> Result<mosharekat_api::referral::v1::GetStatisticsResponse, ApiError> {
        call(
            &self.link,
            ctx,
            "mosharekat.referral.v1.ReferralService/GetStatistics",
            self.timeout,
            Retry::Idempotent,
            &msg,
            |ch, req| {
                let mut c = self.client(ch);
                async move { c.get_statistics(req).await }
            },
        )
        .await
        .map_err(|s| peer_error("the referral service", s))
    }
}
