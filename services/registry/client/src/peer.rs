//! The registry as its peers call it: with the caller's own SERVICE token, the end user's
//! trace and remaining deadline, and retries of idempotent reads while it is unavailable.

use std::time::Duration;

use mosharekat_api::registry::v1 as reg;
use mosharekat_api::registry::v1::registry_service_client::RegistryServiceClient;
use mosharekat_platform::client::{
    PeerInterceptor, PeerLink, PeerTarget, Retry, ServiceToken, call, found, peer_error,
    peer_error_about,
};
use mosharekat_platform::ctx::CallContext;
use mosharekat_platform::error::ApiError;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

type Client = RegistryServiceClient<InterceptedService<Channel, PeerInterceptor>>;

/// The registry's gRPC service name, as its health reports it.
pub const REGISTRY_SERVICE: &str = "mosharekat.registry.v1.RegistryService";

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
        .map_err(|s| peer_error_about("the registry", s, "institution", institution))
    }

    /// The registry's answers to many eligibility questions at once (at most 100), in the
    /// order asked, from one read of the register: for ranking many candidates.
    pub async fn eligibility_batch(
        &self,
        ctx: &CallContext,
        questions: Vec<reg::CheckEligibilityRequest>,
    ) -> Result<Vec<reg::CheckEligibilityResponse>, ApiError> {
        let asked = questions.len();
        let msg = reg::BatchCheckEligibilityRequest {
            requests: questions,
        };
        let answer = call(
            &self.link,
            ctx,
            "mosharekat.registry.v1.RegistryService/BatchCheckEligibility",
            self.timeout,
            Retry::Idempotent,
            &msg,
            |ch, req| {
                let mut c = self.client(ch);
                async move { c.batch_check_eligibility(req).await }
            },
        )
        .await
        .map_err(|s| peer_error("the registry", s))?;
        if answer.responses.len() != asked {
            return Err(ApiError::Unavailable(format!(
                "the registry answered {} of {asked} eligibility questions",
                answer.responses.len()
            )));
        }
        Ok(answer.responses)
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
        .map_err(|s| peer_error_about("the registry", s, "institution", institution))
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
        found(
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

    /// An institution as the registry shows this service (display name, e-mail and the
    /// rest; national codes masked); `None` when it does not know the name.
    pub async fn get_institution(
        &self,
        ctx: &CallContext,
        name: &str,
    ) -> Result<Option<reg::Institution>, ApiError> {
        let msg = reg::GetInstitutionRequest {
            name: name.to_owned(),
        };
        let r = call(
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
        .await;
        match r {
            Ok(answer) => Ok(answer.institution),
            Err(s)
                if matches!(
                    s.code(),
                    tonic::Code::NotFound | tonic::Code::InvalidArgument
                ) =>
            {
                Ok(None)
            }
            Err(s) => Err(peer_error_about("the registry", s, "institution", name)),
        }
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
