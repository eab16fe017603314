//! `mosharekat.referral.v1.ReferralService`: each handler reads its caller and request,
//! and hands them to [`Cases`].

use mosharekat_api::referral::v1 as pb;
use mosharekat_api::referral::v1::referral_service_server::ReferralService;
use mosharekat_platform::ctx::CallContext;
use tonic::{Request, Response, Status};

use crate::cases::Cases;

macro_rules! handle {
    ($request:ident, |$ctx:ident, $req:ident| $body:expr) => {{
        let $ctx = CallContext::from_request(&$request)?;
        let $req = $request.into_inner();
        let out = $body.await?;
        Ok(Response::new(out))
    }};
}

#[tonic::async_trait]
impl ReferralService for Cases {
    #[tracing::instrument(skip_all)]
    async fn create_filing(
        &self,
        request: Request<pb::CreateFilingRequest>,
    ) -> Result<Response<pb::CreateFilingResponse>, Status> {
        handle!(request, |ctx, req| self.create_filing(&ctx, &req))
    }

    #[tracing::instrument(skip_all)]
    async fn get_filing(
        &self,
        request: Request<pb::GetFilingRequest>,
    ) -> Result<Response<pb::GetFilingResponse>, Status> {
        handle!(request, |ctx, req| async {
            Ok::<_, Status>(pb::GetFilingResponse {
                filing: Some(self.get_filing(&ctx, &req.name).await?),
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn list_filings(
        &self,
        request: Request<pb::ListFilingsRequest>,
    ) -> Result<Response<pb::ListFilingsResponse>, Status> {
        handle!(request, |ctx, req| self.list_filings(&ctx, &req))
    }

    #[tracing::instrument(skip_all)]
    async fn update_filing(
        &self,
        request: Request<pb::UpdateFilingRequest>,
    ) -> Result<Response<pb::UpdateFilingResponse>, Status> {
        handle!(request, |ctx, req| async {
            Ok::<_, Status>(pb::UpdateFilingResponse {
                filing: Some(self.update_filing(&ctx, &req).await?),
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn submit_filing(
        &self,
        request: Request<pb::SubmitFilingRequest>,
    ) -> Result<Response<pb::SubmitFilingResponse>, Status> {
        handle!(request, |ctx, req| async {
            Ok::<_, Status>(pb::SubmitFilingResponse {
                filing: Some(self.submit_filing(&ctx, &req.name, &req.etag).await?),
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn withdraw_filing(
        &self,
        request: Request<pb::WithdrawFilingRequest>,
    ) -> Result<Response<pb::WithdrawFilingResponse>, Status> {
        handle!(request, |ctx, req| async {
            Ok::<_, Status>(pb::WithdrawFilingResponse {
                filing: Some(
                    self.withdraw_filing(&ctx, &req.name, &req.etag, &req.reason)
                        .await?,
                ),
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn register_filing(
        &self,
        request: Request<pb::RegisterFilingRequest>,
    ) -> Result<Response<pb::RegisterFilingResponse>, Status> {
        handle!(request, |ctx, req| async {
            Ok::<_, Status>(pb::RegisterFilingResponse {
                filing: Some(
                    self.register_filing(&ctx, &req.name, &req.etag, &req.case_number)
                        .await?,
                ),
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn reject_filing(
        &self,
        request: Request<pb::RejectFilingRequest>,
    ) -> Result<Response<pb::RejectFilingResponse>, Status> {
        handle!(request, |ctx, req| async {
            Ok::<_, Status>(pb::RejectFilingResponse {
                filing: Some(
                    self.reject_filing(&ctx, &req.name, &req.etag, &req.reason)
                        .await?,
                ),
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn close_filing(
        &self,
        request: Request<pb::CloseFilingRequest>,
    ) -> Result<Response<pb::CloseFilingResponse>, Status> {
        handle!(request, |ctx, req| async {
            Ok::<_, Status>(pb::CloseFilingResponse {
                filing: Some(
                    self.close_filing(&ctx, &req.name, &req.etag, &req.outcome)
                        .await?,
                ),
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn create_referral(
        &self,
        request: Request<pb::CreateReferralRequest>,
    ) -> Result<Response<pb::CreateReferralResponse>, Status> {
        handle!(request, |ctx, req| self.create_referral(&ctx, &req))
    }

    #[tracing::instrument(skip_all)]
    async fn get_referral(
        &self,
        request: Request<pb::GetReferralRequest>,
    ) -> Result<Response<pb::GetReferralResponse>, Status> {
        handle!(request, |ctx, req| async {
            Ok::<_, Status>(pb::GetReferralResponse {
                referral: Some(self.get_referral(&ctx, &req.name).await?),
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn list_referrals(
        &self,
        request: Request<pb::ListReferralsRequest>,
    ) -> Result<Response<pb::ListReferralsResponse>, Status> {
        handle!(request, |ctx, req| self.list_referrals(&ctx, &req))
    }

    #[tracing::instrument(skip_all)]
    async fn accept_referral(
        &self,
        request: Request<pb::AcceptReferralRequest>,
    ) -> Result<Response<pb::AcceptReferralResponse>, Status> {
        handle!(request, |ctx, req| async {
            Ok::<_, Status>(pb::AcceptReferralResponse {
                referral: Some(self.accept_referral(&ctx, &req.name, &req.etag).await?),
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn decline_referral(
        &self,
        request: Request<pb::DeclineReferralRequest>,
    ) -> Result<Response<pb::DeclineReferralResponse>, Status> {
        handle!(request, |ctx, req| async {
            Ok::<_, Status>(pb::DeclineReferralResponse {
                referral: Some(
                    self.decline_referral(&ctx, &req.name, &req.etag, &req.reason)
                        .await?,
                ),
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn record_progress(
        &self,
        request: Request<pb::RecordProgressRequest>,
    ) -> Result<Response<pb::RecordProgressResponse>, Status> {
        handle!(request, |ctx, req| async {
            Ok::<_, Status>(pb::RecordProgressResponse {
                referral: Some(self.record_progress(&ctx, &req).await?),
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn resolve_referral(
        &self,
        request: Request<pb::ResolveReferralRequest>,
    ) -> Result<Response<pb::ResolveReferralResponse>, Status> {
        handle!(request, |ctx, req| async {
            Ok::<_, Status>(pb::ResolveReferralResponse {
                referral: Some(self.resolve_referral(&ctx, &req).await?),
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn return_referral(
        &self,
        request: Request<pb::ReturnReferralRequest>,
    ) -> Result<Response<pb::ReturnReferralResponse>, Status> {
        handle!(request, |ctx, req| async {
            Ok::<_, Status>(pb::ReturnReferralResponse {
                referral: Some(
                    self.return_referral(&ctx, &req.name, &req.etag, &req.reason)
                        .await?,
                ),
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn extend_referral(
        &self,
        request: Request<pb::ExtendReferralRequest>,
    ) -> Result<Response<pb::ExtendReferralResponse>, Status> {
        handle!(request, |ctx, req| async {
            Ok::<_, Status>(pb::ExtendReferralResponse {
                referral: Some(self.extend_referral(&ctx, &req).await?),
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn withdraw_referral(
        &self,
        request: Request<pb::WithdrawReferralRequest>,
    ) -> Result<Response<pb::WithdrawReferralResponse>, Status> {
        handle!(request, |ctx, req| async {
            Ok::<_, Status>(pb::WithdrawReferralResponse {
                referral: Some(
                    self.withdraw_referral(&ctx, &req.name, &req.etag, &req.reason)
                        .await?,
                ),
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn reassign_referral(
        &self,
        request: Request<pb::ReassignReferralRequest>,
    ) -> Result<Response<pb::ReassignReferralResponse>, Status> {
        handle!(request, |ctx, req| async {
            Ok::<_, Status>(pb::ReassignReferralResponse {
                referral: Some(self.reassign_referral(&ctx, &req).await?),
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn suggest_institutions(
        &self,
        request: Request<pb::SuggestInstitutionsRequest>,
    ) -> Result<Response<pb::SuggestInstitutionsResponse>, Status> {
        handle!(request, |ctx, req| self.suggest(&ctx, &req))
    }

    #[tracing::instrument(skip_all)]
    async fn get_statistics(
        &self,
        request: Request<pb::GetStatisticsRequest>,
    ) -> Result<Response<pb::GetStatisticsResponse>, Status> {
        handle!(request, |ctx, req| self.statistics(&ctx, &req))
    }

    #[tracing::instrument(skip_all)]
    async fn seal_filing_party(
        &self,
        request: Request<pb::SealFilingPartyRequest>,
    ) -> Result<Response<pb::SealFilingPartyResponse>, Status> {
        handle!(request, |ctx, req| async {
            Ok::<_, Status>(pb::SealFilingPartyResponse {
                filing: Some(self.seal_filing_party(&ctx, &req).await?),
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn seal_referral_party(
        &self,
        request: Request<pb::SealReferralPartyRequest>,
    ) -> Result<Response<pb::SealReferralPartyResponse>, Status> {
        handle!(request, |ctx, req| async {
            Ok::<_, Status>(pb::SealReferralPartyResponse {
                referral: Some(self.seal_referral_party(&ctx, &req).await?),
            })
        })
    }

    #[tracing::instrument(skip_all)]
    async fn list_read_records(
        &self,
        request: Request<pb::ListReadRecordsRequest>,
    ) -> Result<Response<pb::ListReadRecordsResponse>, Status> {
        handle!(request, |ctx, req| crate::reads::list(&self.db, &ctx, &req))
    }
}
