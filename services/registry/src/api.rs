//! `mosharekat.registry.v1.RegistryService`, the tonic edge: each handler checks the
//! caller's role (the one place, from the role tables in [`crate::app`]), turns the
//! request into domain types ([`convert`]), calls its use case and turns the answer into
//! the response. Nothing else happens here.

pub mod calendar;
pub mod convert;

use std::pin::Pin;

use futures::Stream;
use mosharekat_api::registry::v1 as pb;
use mosharekat_api::registry::v1::registry_service_server::RegistryService;
use mosharekat_platform::auth::Role;
use mosharekat_platform::change::Versioned;
use mosharekat_platform::ctx::CallContext;
use mosharekat_platform::error::{ApiError, Violations};
use mosharekat_platform::pagination;
use tonic::{Request, Response, Status};

use crate::app::{self, Answer, LicenceFilter, Registry, Transition};
use crate::names::{self, InstitutionName, LicenceName};
use crate::rules::EligibilityQuestion;
use crate::rules::{
    ActivityArea, Institution, Licence, LicenceAction, LicenceState, NewInstitution,
};
use crate::store::InstitutionFilter;
use convert::{MAX_QUERY, MAX_SHORT, enum_filter, search_term};

/// The caller's context, if its role may make this call.
fn allow<T>(request: &Request<T>, roles: &[Role]) -> Result<CallContext, ApiError> {
    let ctx = CallContext::from_request(request)?;
    ctx.require(roles)?;
    Ok(ctx)
}

fn institution(ctx: &CallContext, v: &Versioned<Institution>) -> pb::Institution {
    convert::institution_to_pb(
        &v.value,
        v.etag(),
        app::sees_personal_data(ctx, v.value.name.id()),
    )
}

fn licence(v: &Versioned<Licence>) -> Option<pb::Licence> {
    Some(convert::licence_to_pb(&v.value, v.etag()))
}

fn eligibility_response(a: Answer) -> pb::CheckEligibilityResponse {
    pb::CheckEligibilityResponse {
        eligible: a.reason == crate::rules::EligibilityReason::Eligible,
        reason: convert::reason_to_pb(a.reason) as i32,
        licence: a.licence.map(|l| l.to_string()).unwrap_or_default(),
        institution_province: a.institution_province,
        licence_judicial_district: a.licence_judicial_district,
    }
}

/// What the six licence transition requests share: each names a licence, its etag and a
/// reason, and is answered with the licence; only a renewal carries a new end of validity.
trait TransitionRequest: Send {
    const ACTION: LicenceAction;
    type Response;
    fn parts(&self) -> (&str, &str, &str);
    fn valid_until(&self) -> Option<&prost_types::Timestamp>;
    fn response(licence: Option<pb::Licence>) -> Self::Response;
}

/// `Request => Response, action[, the field with the new end of validity]`.
macro_rules! transition_request {
    ($($req:ident => $resp:ident, $action:ident $(, $until:ident)?;)*) => {$(
        impl TransitionRequest for pb::$req {
            const ACTION: LicenceAction = LicenceAction::$action;
            type Response = pb::$resp;
            fn parts(&self) -> (&str, &str, &str) {
                (&self.name, &self.etag, &self.reason)
            }
            fn valid_until(&self) -> Option<&prost_types::Timestamp> {
                None $(.or(self.$until.as_ref()))?
            }
            fn response(licence: Option<pb::Licence>) -> pb::$resp {
                pb::$resp { licence }
            }
        }
    )*};
}

transition_request! {
    ApproveLicenceRequest => ApproveLicenceResponse, Approve;
    RejectLicenceRequest => RejectLicenceResponse, Reject;
    SuspendLicenceRequest => SuspendLicenceResponse, Suspend;
    ReinstateLicenceRequest => ReinstateLicenceResponse, Reinstate;
    RevokeLicenceRequest => RevokeLicenceResponse, Revoke;
    RenewLicenceRequest => RenewLicenceResponse, Renew, valid_until;
}

impl Registry {
    /// One licence transition, from request to response (the role check included).
    async fn transition_rpc<R: TransitionRequest>(
        &self,
        request: Request<R>,
    ) -> Result<Response<R::Response>, Status> {
        let ctx = allow(&request, app::REGISTRARS)?;
        let r = request.into_inner();
        let (name, etag, reason) = r.parts();
        let action = R::ACTION;
        let name: LicenceName = names::parse(name, "name")?;
        let reason = convert::reason(reason, action.needs_reason(), "reason")?;
        let valid_until_us = match (action, r.valid_until()) {
            (LicenceAction::Renew, None) => {
                return Err(ApiError::invalid("valid_until", "is required").into());
            }
            (LicenceAction::Renew, Some(t)) => {
                Some(convert::timestamp(t).map_err(|e| ApiError::invalid("valid_until", e))?)
            }
            _ => None,
        };
        let t = Transition {
            name,
            etag: etag.to_owned(),
            action,
            reason,
            valid_until_us,
        };
        let licence = licence(&self.transition(&ctx, t).await?);
        Ok(Response::new(R::response(licence)))
    }
}

type EventStream =
    Pin<Box<dyn Stream<Item = Result<pb::WatchLicenceEventsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl RegistryService for Registry {
    #[tracing::instrument(skip_all)]
    async fn create_institution(
        &self,
        request: Request<pb::CreateInstitutionRequest>,
    ) -> Result<Response<pb::CreateInstitutionResponse>, Status> {
        let ctx = allow(&request, app::REGISTRARS)?;
        let req = request.into_inner();
        let p = req
            .institution
            .as_ref()
            .ok_or_else(|| ApiError::invalid("institution", "is required"))?;
        let new = NewInstitution::try_from(p)?;
        let answer = self
            .create_institution(&ctx, &req.request_id, &req, new, |v| {
                pb::CreateInstitutionResponse {
                    institution: Some(convert::institution_to_pb(&v.value, v.etag(), true)),
                }
            })
            .await?;
        Ok(Response::new(answer))
    }

    #[tracing::instrument(skip_all)]
    async fn get_institution(
        &self,
        request: Request<pb::GetInstitutionRequest>,
    ) -> Result<Response<pb::GetInstitutionResponse>, Status> {
        let ctx = allow(&request, app::READERS)?;
        let name: InstitutionName = names::parse(&request.get_ref().name, "name")?;
        let v = self.get_institution(&ctx, &name).await?;
        Ok(Response::new(pb::GetInstitutionResponse {
            institution: Some(institution(&ctx, &v)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_institutions(
        &self,
        request: Request<pb::ListInstitutionsRequest>,
    ) -> Result<Response<pb::ListInstitutionsResponse>, Status> {
        let ctx = allow(&request, app::READERS)?;
        let req = request.into_inner();
        let size = pagination::page_size(req.page_size, "page_size")?;
        let area = enum_filter(req.activity_area, "activity_area", ActivityArea::from_code)?;
        let licence_state =
            enum_filter(req.licence_state, "licence_state", LicenceState::from_code)?;
        let mut v = Violations::new();
        let query_key = search_term(&mut v, "query", &req.query, MAX_QUERY);
        let province_key = search_term(&mut v, "province", &req.province, MAX_SHORT);
        v.into_result()?;
        let filter = InstitutionFilter {
            only_id: None,
            province_key,
            area,
            licence_state,
            query_key,
            include_dissolved: req.include_dissolved,
        };
        let own = if ctx.role() == Role::Institution {
            ctx.principal.institution.clone().unwrap_or_default()
        } else {
            String::new()
        };
        let fp = pagination::fingerprint(&[
            "institutions",
            &own,
            filter.province_key.as_deref().unwrap_or(""),
            &req.activity_area.to_string(),
            &req.licence_state.to_string(),
            filter.query_key.as_deref().unwrap_or(""),
            &req.include_dissolved.to_string(),
        ]);
        let after: Option<String> = pagination::decode(&req.page_token, &fp, "page_token")?;
        let mut rows = self
            .list_institutions(&ctx, filter, after.as_deref(), size + 1)
            .await?;
        let next_page_token =
            pagination::next_page(&mut rows, size, &fp, |r| r.value.name.id().to_string());
        Ok(Response::new(pb::ListInstitutionsResponse {
            institutions: rows.iter().map(|r| institution(&ctx, r)).collect(),
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn update_institution(
        &self,
        request: Request<pb::UpdateInstitutionRequest>,
    ) -> Result<Response<pb::UpdateInstitutionResponse>, Status> {
        let ctx = allow(&request, app::REGISTRARS)?;
        let req = request.into_inner();
        let p = req
            .institution
            .as_ref()
            .ok_or_else(|| ApiError::invalid("institution", "is required"))?;
        let name: InstitutionName = names::parse(&p.name, "institution.name")?;
        let paths = req
            .update_mask
            .as_ref()
            .map(|m| m.paths.clone())
            .unwrap_or_default();
        let v = self
            .update_institution(&ctx, &name, &p.etag, |fields| {
                convert::apply_update(fields, p, &paths)
            })
            .await?;
        Ok(Response::new(pb::UpdateInstitutionResponse {
            institution: Some(convert::institution_to_pb(&v.value, v.etag(), true)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn dissolve_institution(
        &self,
        request: Request<pb::DissolveInstitutionRequest>,
    ) -> Result<Response<pb::DissolveInstitutionResponse>, Status> {
        let ctx = allow(&request, app::REGISTRARS)?;
        let req = request.into_inner();
        let name: InstitutionName = names::parse(&req.name, "name")?;
        let reason = convert::reason(&req.reason, true, "reason")?;
        let v = self
            .dissolve_institution(&ctx, &name, &req.etag, reason)
            .await?;
        Ok(Response::new(pb::DissolveInstitutionResponse {
            institution: Some(convert::institution_to_pb(&v.value, v.etag(), true)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn create_licence(
        &self,
        request: Request<pb::CreateLicenceRequest>,
    ) -> Result<Response<pb::CreateLicenceResponse>, Status> {
        let ctx = allow(&request, app::APPLICANTS)?;
        let req = request.into_inner();
        let parent: InstitutionName = names::parse(&req.parent, "parent")?;
        if !req.request_id.is_empty() {
            mosharekat_platform::idempotency::validate_request_id(&req.request_id, "request_id")?;
        }
        let p = req
            .licence
            .as_ref()
            .ok_or_else(|| ApiError::invalid("licence", "is required"))?;
        let terms = convert::licence_terms(p, "licence", self.db().now_micros())?;
        let answer = self
            .create_licence(&ctx, &req.request_id, &req, &parent, terms, |v| {
                pb::CreateLicenceResponse {
                    licence: licence(v),
                }
            })
            .await?;
        Ok(Response::new(answer))
    }

    #[tracing::instrument(skip_all)]
    async fn get_licence(
        &self,
        request: Request<pb::GetLicenceRequest>,
    ) -> Result<Response<pb::GetLicenceResponse>, Status> {
        let ctx = allow(&request, app::READERS)?;
        let name: LicenceName = names::parse(&request.get_ref().name, "name")?;
        let v = self.get_licence(&ctx, &name).await?;
        Ok(Response::new(pb::GetLicenceResponse {
            licence: licence(&v),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_licences(
        &self,
        request: Request<pb::ListLicencesRequest>,
    ) -> Result<Response<pb::ListLicencesResponse>, Status> {
        let ctx = allow(&request, app::READERS)?;
        let req = request.into_inner();
        let size = pagination::page_size(req.page_size, "page_size")?;
        let state = enum_filter(req.state, "state", LicenceState::from_code)?;
        let institution = if req.parent == "institutions/-" {
            None
        } else {
            Some(names::parse::<InstitutionName>(&req.parent, "parent")?.0)
        };
        let shown = if ctx.role() == Role::Institution {
            ctx.principal.institution.clone()
        } else {
            institution.as_ref().map(|i| i.to_string())
        };
        let expires_within_days = match req.expires_within_days {
            Some(d) if !(0..=3660).contains(&d) => {
                return Err(
                    ApiError::invalid("expires_within_days", "must be from 0 to 3660").into(),
                );
            }
            d => d.map(|d| d as u32),
        };
        if req.expired && expires_within_days.is_some() {
            return Err(ApiError::invalid(
                "expired",
                "cannot be set with expires_within_days: an ended licence ends within no days",
            )
            .into());
        }
        let fp = pagination::fingerprint(&[
            "licences",
            shown.as_deref().unwrap_or("-"),
            &req.state.to_string(),
            &format!("{:?}/{}", req.expires_within_days, req.expired),
        ]);
        let after: Option<String> = pagination::decode(&req.page_token, &fp, "page_token")?;
        let mut rows = self
            .list_licences(
                &ctx,
                LicenceFilter {
                    institution,
                    state,
                    expires_within_days,
                    expired: req.expired,
                },
                after.as_deref(),
                size + 1,
            )
            .await?;
        let next_page_token =
            pagination::next_page(&mut rows, size, &fp, |r| r.value.name.id.to_string());
        Ok(Response::new(pb::ListLicencesResponse {
            licences: rows
                .iter()
                .map(|r| convert::licence_to_pb(&r.value, r.etag()))
                .collect(),
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn approve_licence(
        &self,
        request: Request<pb::ApproveLicenceRequest>,
    ) -> Result<Response<pb::ApproveLicenceResponse>, Status> {
        self.transition_rpc(request).await
    }

    #[tracing::instrument(skip_all)]
    async fn reject_licence(
        &self,
        request: Request<pb::RejectLicenceRequest>,
    ) -> Result<Response<pb::RejectLicenceResponse>, Status> {
        self.transition_rpc(request).await
    }

    #[tracing::instrument(skip_all)]
    async fn suspend_licence(
        &self,
        request: Request<pb::SuspendLicenceRequest>,
    ) -> Result<Response<pb::SuspendLicenceResponse>, Status> {
        self.transition_rpc(request).await
    }

    #[tracing::instrument(skip_all)]
    async fn reinstate_licence(
        &self,
        request: Request<pb::ReinstateLicenceRequest>,
    ) -> Result<Response<pb::ReinstateLicenceResponse>, Status> {
        self.transition_rpc(request).await
    }

    #[tracing::instrument(skip_all)]
    async fn revoke_licence(
        &self,
        request: Request<pb::RevokeLicenceRequest>,
    ) -> Result<Response<pb::RevokeLicenceResponse>, Status> {
        self.transition_rpc(request).await
    }

    #[tracing::instrument(skip_all)]
    async fn renew_licence(
        &self,
        request: Request<pb::RenewLicenceRequest>,
    ) -> Result<Response<pb::RenewLicenceResponse>, Status> {
        self.transition_rpc(request).await
    }

    #[tracing::instrument(skip_all)]
    async fn check_eligibility(
        &self,
        request: Request<pb::CheckEligibilityRequest>,
    ) -> Result<Response<pb::CheckEligibilityResponse>, Status> {
        let ctx = allow(&request, app::ELIGIBILITY_ASKERS)?;
        let q = EligibilityQuestion::parse(request.get_ref(), "")?;
        let a = self.check_eligibility(&ctx, &q).await?;
        Ok(Response::new(eligibility_response(a)))
    }

    #[tracing::instrument(skip_all)]
    async fn batch_check_eligibility(
        &self,
        request: Request<pb::BatchCheckEligibilityRequest>,
    ) -> Result<Response<pb::BatchCheckEligibilityResponse>, Status> {
        let ctx = allow(&request, app::ELIGIBILITY_ASKERS)?;
        let req = request.into_inner();
        if req.requests.len() > app::MAX_BATCH {
            return Err(ApiError::invalid(
                "requests",
                format!("must be at most {} questions", app::MAX_BATCH),
            )
            .into());
        }
        let questions = req
            .requests
            .iter()
            .enumerate()
            .map(|(i, q)| EligibilityQuestion::parse(q, &format!("requests[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let answers = self.batch_check_eligibility(&ctx, &questions).await?;
        Ok(Response::new(pb::BatchCheckEligibilityResponse {
            responses: answers.into_iter().map(eligibility_response).collect(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn check_licensed(
        &self,
        request: Request<pb::CheckLicensedRequest>,
    ) -> Result<Response<pb::CheckLicensedResponse>, Status> {
        let ctx = allow(&request, app::ELIGIBILITY_ASKERS)?;
        let req = request.into_inner();
        let name: InstitutionName = names::parse(&req.institution, "institution")?;
        let mut v = Violations::new();
        let province = search_term(&mut v, "province", &req.province, MAX_SHORT);
        v.into_result()?;
        let a = self
            .check_licensed(&ctx, &name, province.as_deref())
            .await?;
        Ok(Response::new(pb::CheckLicensedResponse {
            licensed: a.reason == crate::rules::EligibilityReason::Eligible,
            reason: convert::reason_to_pb(a.reason) as i32,
            licence: a.licence.map(|l| l.to_string()).unwrap_or_default(),
            display_name: a.display_name,
        }))
    }

    type WatchLicenceEventsStream = EventStream;

    #[tracing::instrument(skip_all)]
    async fn watch_licence_events(
        &self,
        request: Request<pb::WatchLicenceEventsRequest>,
    ) -> Result<Response<Self::WatchLicenceEventsStream>, Status> {
        allow(&request, app::EVENT_WATCHERS)?;
        let after = request.get_ref().after_sequence;
        if after < 0 {
            return Err(ApiError::invalid("after_sequence", "must not be negative").into());
        }
        Ok(Response::new(crate::events::watch(self.clone(), after)))
    }

    #[tracing::instrument(skip_all)]
    async fn export_licence_certificate(
        &self,
        request: Request<pb::ExportLicenceCertificateRequest>,
    ) -> Result<Response<pb::ExportLicenceCertificateResponse>, Status> {
        crate::public::api::export_certificate(self, request).await
    }
}
