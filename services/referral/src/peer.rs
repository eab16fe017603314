//! The registry, as this service calls it: with its own SERVICE token, the caller's trace
//! and remaining deadline, and retries of idempotent reads while it is unavailable.

use std::time::Duration;

use mosharekat_api::registry::v1 as reg;
use mosharekat_api::registry::v1::registry_service_client::RegistryServiceClient;
use mosharekat_platform::client::{
    PeerInterceptor, ServiceToken, peer_error, peer_request, retry_unavailable,
};
use mosharekat_platform::ctx::CallContext;
use mosharekat_platform::error::ApiError;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

type Client = RegistryServiceClient<InterceptedService<Channel, PeerInterceptor>>;

#[derive(Clone, Debug)]
pub struct RegistryPeer {
    client: Client,
    timeout: Duration,
}

const ATTEMPTS: u32 = 3;

impl RegistryPeer {
    pub fn new(channel: Channel, token: ServiceToken, timeout: Duration) -> Self {
        Self {
            client: RegistryServiceClient::with_interceptor(channel, PeerInterceptor::new(token)),
            timeout,
        }
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
        retry_unavailable(ATTEMPTS, ctx.deadline, || {
            let mut c = self.client.clone();
            let req = peer_request(msg.clone(), ctx, self.timeout);
            async move {
                let req = req.map_err(tonic::Status::from)?;
                c.check_eligibility(req).await.map(|r| r.into_inner())
            }
        })
        .await
        .map_err(|s| match s.code() {
            tonic::Code::NotFound => ApiError::not_found("institution", institution),
            _ => peer_error("the registry", s),
        })
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
            let page = retry_unavailable(ATTEMPTS, ctx.deadline, || {
                let mut c = self.client.clone();
                let req = peer_request(msg.clone(), ctx, self.timeout);
                async move {
                    let req = req.map_err(tonic::Status::from)?;
                    c.list_institutions(req).await.map(|r| r.into_inner())
                }
            })
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
