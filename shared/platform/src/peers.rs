//! The suite's services as their peers call them: with the caller's own SERVICE token,
//! the end user's trace and remaining deadline, and retries of idempotent reads while a
//! peer is unavailable.

use std::time::Duration;

use crate::client::{PeerInterceptor, PeerLink, PeerTarget, Retry, ServiceToken, call, peer_error};
use crate::ctx::CallContext;
use crate::error::ApiError;
use mosharekat_api::registry::v1 as reg;
use mosharekat_api::registry::v1::registry_service_client::RegistryServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

type Client = RegistryServiceClient<InterceptedService<Channel, PeerInterceptor>>;

/// The registry's gRPC service name, as its health reports it.
pub const REGISTRY_SERVICE: &str = "mosharekat.registry.v1.RegistryService";
/// The referral service's gRPC service name, as its health reports it.
pub const REFERRAL_SERVICE: &str = "mosharekat.referral.v1.ReferralService";

#[derive(Clone, Debug)]
pub struct RegistryPeer {
    link: PeerLink,
    interceptor: PeerInterceptor,
    timeout: Duration,
}

impl RegistryPeer {
    pub fn new(target: PeerTarget, token: ServiceToken, timeout: Duration) -> Self {
        Self {
            link: PeerLink::new("the registry", REGISTRY_SERVICE, target),
            interceptor: PeerInterceptor::new(token),
            timeout,
        }
    }

    fn client(&self, channel: Channel) -> Client {
        RegistryServiceClient::with_interceptor(channel, self.interceptor.clone())
    }

    /// The link to the registry (its circuit, for tests and health).
    pub fn link(&self) -> &PeerLink {
        &self.link
    }

    /// The registry's answer to "may this institution do this action in this area now?".
    pub async fn eligibility(
        &self,
        ctx: &CallContext,
        institution: &str,
        action: reg::PermittedAction,
        area: i32,
        province: &str,
    ) -> Result<reg::CheckEligibilityResponse, ApiError> {
        let msg = reg::CheckEligibilityRequest {
            institution: institution.to_owned(),
            action: action as i32,
            activity_area: area,
            province: province.to_owned(),
        };
        call(
            &self.link,
            ctx,
            "mosharekat.registry.v1.RegistryService/CheckEligibility",
            self.timeout,
            Retry::Idempotent,
            &msg,
            |ch, req| {
                let mut c = self.client(ch);
                async move { c.check_eligibility(req).await }
            },
        )
        .await
        .map_err(|s| match s.code() {
            tonic::Code::NotFound => ApiError::not_found("institution", institution),
            _ => peer_error("the registry", s),
        })
    }

    /// Does the institution hold a licence in force now (for anything)?
    pub async fn licensed(
        &self,
        ctx: &CallContext,
        institution: &str,
        province: &str,
    ) -> Result<reg::CheckLicensedResponse, ApiError> {
        let msg = reg::CheckLicensedRequest {
            institution: institution.to_owned(),
            province: province.to_owned(),
        };
        call(
            &self.link,
            ctx,
            "mosharekat.registry.v1.RegistryService/CheckLicensed",
            self.timeout,
            Retry::Idempotent,
            &msg,
            |ch, req| {
                let mut c = self.client(ch);
                async move { c.check_licensed(req).await }
            },
        )
        .await
        .map_err(|s| match s.code() {
            tonic::Code::NotFound => ApiError::not_found("institution", institution),
            _ => peer_error("the registry", s),
        })
    }

    /// Whether an institution exists (for pointers to it); `false` when it does not.
    pub async fn institution_exists(
        &self,
        ctx: &CallContext,
        name: &str,
    ) -> Result<bool, ApiError> {
        let msg = reg::GetInstitutionRequest {
            name: name.to_owned(),
        };
        exists(
            call(
                &self.link,
                ctx,
                "mosharekat.registry.v1.RegistryService/GetInstitution",
                self.timeout,
                Retry::Idempotent,
                &msg,
                |ch, req| {
                    let mut c = self.client(ch);
                    async move { c.get_institution(req).await }
                },
            )
            .await,
            "the registry",
        )
    }

    /// Every institution of the province holding an active licence in the area.
    pub async fn licensed_institutions(
        &self,
        ctx: &CallContext,
        province: &str,
        area: i32,
    ) -> Result<Vec<reg::Institution>, ApiError> {
        let mut out = Vec::new();
        let mut token = String::new();
        loop {
            let msg = reg::ListInstitutionsRequest {
                page_size: 500,
                page_token: token.clone(),
                province: province.to_owned(),
                activity_area: area,
                licence_state: reg::LicenceState::Active as i32,
                ..Default::default()
            };
            let page = call(
                &self.link,
                ctx,
                "mosharekat.registry.v1.RegistryService/ListInstitutions",
                self.timeout,
                Retry::Idempotent,
                &msg,
                |ch, req| {
                    let mut c = self.client(ch);
                    async move { c.list_institutions(req).await }
                },
            )
            .await
            .map_err(|s| peer_error("the registry", s))?;
            out.extend(page.institutions);
            if page.next_page_token.is_empty() || out.len() >= 5000 {
                return Ok(out);
            }
            token = page.next_page_token;
        }
    }
}

/// The stable reason token of an eligibility answer (`LICENCE_SUSPENDED`, …).
pub fn reason_token(r: i32) -> String {
    reg::EligibilityReason::try_from(r)
        .map(|r| {
            r.as_str_name()
                .trim_start_matches("ELIGIBILITY_REASON_")
                .to_owned()
        })
        .unwrap_or_else(|_| "UNSPECIFIED".into())
}

/// Refuses with `FAILED_PRECONDITION` and the registry's reason unless eligible.
pub fn require_eligible(
    answer: &reg::CheckEligibilityResponse,
    what: &str,
) -> Result<(), ApiError> {
    if answer.eligible {
        return Ok(());
    }
    let reason = reason_token(answer.reason);
    let persian = match reason.as_str() {
        "NO_LICENCE" => "نهاد مجوزی از دستگاه قضایی ندارد.",
        "LICENCE_PENDING" => "مجوز نهاد هنوز در انتظار تأیید است.",
        "LICENCE_SUSPENDED" => "مجوز نهاد تعلیق شده است.",
        "LICENCE_REVOKED" => "مجوز نهاد لغو شده است.",
        "LICENCE_EXPIRED" => "اعتبار مجوز نهاد به پایان رسیده است.",
        "AREA_NOT_LICENSED" => "مجوز نهاد این حوزهٔ فعالیت را در بر نمی‌گیرد.",
        "ACTION_NOT_LICENSED" => "مجوز نهاد این اقدام را در بر نمی‌گیرد.",
        "INSTITUTION_DISSOLVED" => "نهاد منحل شده است.",
        _ => "نهاد مجاز به این اقدام نیست.",
    };
    Err(ApiError::precondition(
        reason.clone(),
        format!("the institution may not {what}: {reason}"),
        persian,
    ))
}

fn exists<T>(r: Result<T, tonic::Status>, peer: &str) -> Result<bool, ApiError> {
    match r {
        Ok(_) => Ok(true),
        Err(s)
            if matches!(
                s.code(),
                tonic::Code::NotFound | tonic::Code::InvalidArgument
            ) =>
        {
            Ok(false)
        }
        Err(s) => Err(peer_error(peer, s)),
    }
}

use mosharekat_api::referral::v1::referral_service_client::ReferralServiceClient;

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
            .map(|_| ())
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
            .map(|_| ())
        };
        exists(r, "the referral service")
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
