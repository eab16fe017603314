//! `mosharekat.meeting.v1.MeetingService`: each handler reads its caller and request and
//! hands them to [`Meetings`].

use mosharekat_api::meeting::v1 as pb;
use mosharekat_api::meeting::v1::meeting_service_server::MeetingService;
use mosharekat_persian::normalize_name;
use mosharekat_platform::ctx::CallContext;
use mosharekat_platform::db::{from_timestamp, now_micros};
use mosharekat_platform::error::ApiError;
use tonic::{Request, Response, Status};

use crate::names::MeetingName;
use crate::rules::MeetingAction;
use crate::work::{MANAGERS, Meetings};

macro_rules! handle {
    ($request:ident, |$ctx:ident, $req:ident| $body:expr, $wrap:expr) => {{
        let $ctx = CallContext::from_request(&$request)?;
        let $req = $request.into_inner();
        let out = $body.await?;
        Ok(Response::new($wrap(out)))
    }};
}

fn reason(raw: &str, field: &str) -> Result<String, ApiError> {
    let r = mosharekat_persian::normalize_text(raw, 2000)
        .map_err(|e| ApiError::invalid(field, e.to_string()))?;
    if r.is_empty() {
        return Err(ApiError::invalid(field, "is required"));
    }
    Ok(r)
}

impl Meetings {
    async fn reschedule(
        &self,
        ctx: &CallContext,
        req: &pb::RescheduleMeetingRequest,
    ) -> Result<pb::Meeting, ApiError> {
        let at = req
            .scheduled_time
            .as_ref()
            .ok_or_else(|| ApiError::invalid("scheduled_time", "is required"))
            .and_then(|t| {
                from_timestamp(t).map(|_| *t).ok_or_else(|| {
                    ApiError::invalid("scheduled_time", "must be a time between 1900 and 2200")
                })
            })?;
        let place = if req.place.is_empty() {
            None
        } else {
            Some(
                normalize_name(&req.place, 300)
                    .map_err(|e| ApiError::invalid("place", e.to_string()))?,
            )
        };
        self.change_meeting(
            ctx,
            &req.name,
            &req.etag,
            MeetingAction::Reschedule,
            async move |_, m, _| {
                m.scheduled_time = Some(at);
                if let Some(p) = place {
                    m.place = p;
                }
                m.state_reason.clear();
                Ok(())
            },
        )
        .await
    }

    async fn set_state_reason(
        &self,
        ctx: &CallContext,
        name: &str,
        etag: &str,
        why: &str,
        action: MeetingAction,
    ) -> Result<pb::Meeting, ApiError> {
        let why = reason(why, "reason")?;
        self.change_meeting(ctx, name, etag, action, async move |_, m, _| {
            m.state_reason = why;
            Ok(())
        })
        .await
    }

    async fn set_agenda(
        &self,
        ctx: &CallContext,
        req: &pb::SetAgendaRequest,
    ) -> Result<pb::Meeting, ApiError> {
        ctx.require(MANAGERS)?;
        MeetingName::parse(&req.name, "name")?;
        // The pointers are checked with their services before the write transaction.
        let items = self.check_agenda(ctx, &req.items).await?;
        self.change_meeting(
            ctx,
            &req.name,
            &req.etag,
            MeetingAction::EditAgenda,
            async move |_, m, _| {
                if m.agenda_final {
                    return Err(ApiError::precondition(
                        "AGENDA_FINAL",
                        "the agenda is final",
                        "دستور جلسه نهایی شده است.",
                    ));
                }
                m.agenda = items;
                Ok(())
            },
        )
        .await
    }

    async fn finalize_agenda(
        &self,
        ctx: &CallContext,
        req: &pb::FinalizeAgendaRequest,
    ) -> Result<pb::Meeting, ApiError> {
        ctx.require(MANAGERS)?;
        let current = self.get_meeting(ctx, &req.name).await?;
        if current.agenda_final {
            return Err(ApiError::precondition(
                "AGENDA_FINAL",
                "the agenda is already final",
                "دستور جلسه پیش‌تر نهایی شده است.",
            ));
        }
        let name = MeetingName::parse(&req.name, "name")?;
        let group = self.get_group(ctx, &name.group().to_string()).await?;
        let figures = if current.agenda.iter().any(|i| i.standing_report) {
            let at = current
                .scheduled_time
                .as_ref()
                .and_then(from_timestamp)
                .unwrap_or_else(now_micros);
            Some(self.standing_report(ctx, &group.province, at).await?)
        } else {
            None
        };
        // Pinned to the meeting as read, so the figures belong to that agenda.
        let etag = if req.etag.is_empty() {
            current.etag.clone()
        } else {
            req.etag.clone()
        };
        if etag != current.etag {
            return Err(ApiError::Aborted(format!(
                "{} was changed by someone else; read it again and retry",
                req.name
            )));
        }
        self.change_meeting(
            ctx,
            &req.name,
            &etag,
            MeetingAction::EditAgenda,
            async move |_, m, _| {
                if let Some(f) = figures {
                    for item in m.agenda.iter_mut().filter(|i| i.standing_report) {
                        item.figures = f.clone();
                    }
                }
                m.agenda_final = true;
                Ok(())
            },
        )
        .await
    }
}

#[tonic::async_trait]
impl MeetingService for Meetings {
    #[tracing::instrument(skip_all)]
    async fn create_working_group(
        &self,
        request: Request<pb::CreateWorkingGroupRequest>,
    ) -> Result<Response<pb::CreateWorkingGroupResponse>, Status> {
        handle!(request, |ctx, req| self.create_group(&ctx, &req), |g| {
            pb::CreateWorkingGroupResponse {
                working_group: Some(g),
            }
        })
    }

    #[tracing::instrument(skip_all)]
    async fn get_working_group(
        &self,
        request: Request<pb::GetWorkingGroupRequest>,
    ) -> Result<Response<pb::GetWorkingGroupResponse>, Status> {
        handle!(request, |ctx, req| self.get_group(&ctx, &req.name), |g| {
            pb::GetWorkingGroupResponse {
                working_group: Some(g),
            }
        })
    }

    #[tracing::instrument(skip_all)]
    async fn list_working_groups(
        &self,
        request: Request<pb::ListWorkingGroupsRequest>,
    ) -> Result<Response<pb::ListWorkingGroupsResponse>, Status> {
        handle!(request, |ctx, req| self.list_groups(&ctx, &req), |r| r)
    }

    #[tracing::instrument(skip_all)]
    async fn update_working_group(
        &self,
        request: Request<pb::UpdateWorkingGroupRequest>,
    ) -> Result<Response<pb::UpdateWorkingGroupResponse>, Status> {
        handle!(request, |ctx, req| self.update_group(&ctx, &req), |g| {
            pb::UpdateWorkingGroupResponse {
                working_group: Some(g),
            }
        })
    }

    #[tracing::instrument(skip_all)]
    async fn seat_member(
        &self,
        request: Request<pb::SeatMemberRequest>,
    ) -> Result<Response<pb::SeatMemberResponse>, Status> {
        handle!(request, |ctx, req| self.seat(&ctx, &req), |m| {
            pb::SeatMemberResponse { member: Some(m) }
        })
    }

    #[tracing::instrument(skip_all)]
    async fn list_members(
        &self,
        request: Request<pb::ListMembersRequest>,
    ) -> Result<Response<pb::ListMembersResponse>, Status> {
        handle!(
            request,
            |ctx, req| self.list_members(&ctx, &req),
            |members| pb::ListMembersResponse { members }
        )
    }

    #[tracing::instrument(skip_all)]
    async fn unseat_member(
        &self,
        request: Request<pb::UnseatMemberRequest>,
    ) -> Result<Response<pb::UnseatMemberResponse>, Status> {
        handle!(request, |ctx, req| self.unseat(&ctx, &req), |m| {
            pb::UnseatMemberResponse { member: Some(m) }
        })
    }

    #[tracing::instrument(skip_all)]
    async fn schedule_meeting(
        &self,
        request: Request<pb::ScheduleMeetingRequest>,
    ) -> Result<Response<pb::ScheduleMeetingResponse>, Status> {
        handle!(request, |ctx, req| self.schedule(&ctx, &req), |m| {
            pb::ScheduleMeetingResponse { meeting: Some(m) }
        })
    }

    #[tracing::instrument(skip_all)]
    async fn get_meeting(
        &self,
        request: Request<pb::GetMeetingRequest>,
    ) -> Result<Response<pb::GetMeetingResponse>, Status> {
        handle!(request, |ctx, req| self.get_meeting(&ctx, &req.name), |m| {
            pb::GetMeetingResponse { meeting: Some(m) }
        })
    }

    #[tracing::instrument(skip_all)]
    async fn list_meetings(
        &self,
        request: Request<pb::ListMeetingsRequest>,
    ) -> Result<Response<pb::ListMeetingsResponse>, Status> {
        handle!(request, |ctx, req| self.list_meetings(&ctx, &req), |r| r)
    }

    #[tracing::instrument(skip_all)]
    async fn reschedule_meeting(
        &self,
        request: Request<pb::RescheduleMeetingRequest>,
    ) -> Result<Response<pb::RescheduleMeetingResponse>, Status> {
        handle!(request, |ctx, req| self.reschedule(&ctx, &req), |m| {
            pb::RescheduleMeetingResponse { meeting: Some(m) }
        })
    }

    #[tracing::instrument(skip_all)]
    async fn postpone_meeting(
        &self,
        request: Request<pb::PostponeMeetingRequest>,
    ) -> Result<Response<pb::PostponeMeetingResponse>, Status> {
        handle!(
            request,
            |ctx, req| self.set_state_reason(
                &ctx,
                &req.name,
                &req.etag,
                &req.reason,
                MeetingAction::Postpone
            ),
            |m| pb::PostponeMeetingResponse { meeting: Some(m) }
        )
    }

    #[tracing::instrument(skip_all)]
    async fn cancel_meeting(
        &self,
        request: Request<pb::CancelMeetingRequest>,
    ) -> Result<Response<pb::CancelMeetingResponse>, Status> {
        handle!(
            request,
            |ctx, req| self.set_state_reason(
                &ctx,
                &req.name,
                &req.etag,
                &req.reason,
                MeetingAction::Cancel
            ),
            |m| pb::CancelMeetingResponse { meeting: Some(m) }
        )
    }

    #[tracing::instrument(skip_all)]
    async fn set_agenda(
        &self,
        request: Request<pb::SetAgendaRequest>,
    ) -> Result<Response<pb::SetAgendaResponse>, Status> {
        handle!(request, |ctx, req| self.set_agenda(&ctx, &req), |m| {
            pb::SetAgendaResponse { meeting: Some(m) }
        })
    }

    #[tracing::instrument(skip_all)]
    async fn finalize_agenda(
        &self,
        request: Request<pb::FinalizeAgendaRequest>,
    ) -> Result<Response<pb::FinalizeAgendaResponse>, Status> {
        handle!(request, |ctx, req| self.finalize_agenda(&ctx, &req), |m| {
            pb::FinalizeAgendaResponse { meeting: Some(m) }
        })
    }

    #[tracing::instrument(skip_all)]
    async fn record_attendance(
        &self,
        request: Request<pb::RecordAttendanceRequest>,
    ) -> Result<Response<pb::RecordAttendanceResponse>, Status> {
        handle!(
            request,
            |ctx, req| self.record_attendance(&ctx, &req),
            |m| pb::RecordAttendanceResponse { meeting: Some(m) }
        )
    }

    #[tracing::instrument(skip_all)]
    async fn start_meeting(
        &self,
        request: Request<pb::StartMeetingRequest>,
    ) -> Result<Response<pb::StartMeetingResponse>, Status> {
        handle!(
            request,
            |ctx, req| self.start(&ctx, &req.name, &req.etag),
            |m| pb::StartMeetingResponse { meeting: Some(m) }
        )
    }

    #[tracing::instrument(skip_all)]
    async fn record_resolution(
        &self,
        request: Request<pb::RecordResolutionRequest>,
    ) -> Result<Response<pb::RecordResolutionResponse>, Status> {
        handle!(
            request,
            |ctx, req| self.record_resolution(&ctx, &req),
            |r| pb::RecordResolutionResponse {
                resolution: Some(r)
            }
        )
    }

    #[tracing::instrument(skip_all)]
    async fn approve_minutes(
        &self,
        request: Request<pb::ApproveMinutesRequest>,
    ) -> Result<Response<pb::ApproveMinutesResponse>, Status> {
        handle!(request, |ctx, req| self.approve_minutes(&ctx, &req), |m| {
            pb::ApproveMinutesResponse { meeting: Some(m) }
        })
    }

    #[tracing::instrument(skip_all)]
    async fn verify_minutes(
        &self,
        request: Request<pb::VerifyMinutesRequest>,
    ) -> Result<Response<pb::VerifyMinutesResponse>, Status> {
        handle!(
            request,
            |ctx, req| self.verify_minutes(&ctx, &req.name),
            |r| r
        )
    }

    #[tracing::instrument(skip_all)]
    async fn export_minutes(
        &self,
        request: Request<pb::ExportMinutesRequest>,
    ) -> Result<Response<pb::ExportMinutesResponse>, Status> {
        handle!(
            request,
            |ctx, req| self.export_minutes(&ctx, &req.name),
            |r| r
        )
    }

    #[tracing::instrument(skip_all)]
    async fn get_resolution(
        &self,
        request: Request<pb::GetResolutionRequest>,
    ) -> Result<Response<pb::GetResolutionResponse>, Status> {
        handle!(
            request,
            |ctx, req| self.get_resolution(&ctx, &req.name),
            |r| pb::GetResolutionResponse {
                resolution: Some(r)
            }
        )
    }

    #[tracing::instrument(skip_all)]
    async fn list_resolutions(
        &self,
        request: Request<pb::ListResolutionsRequest>,
    ) -> Result<Response<pb::ListResolutionsResponse>, Status> {
        handle!(request, |ctx, req| self.list_resolutions(&ctx, &req), |r| r)
    }

    #[tracing::instrument(skip_all)]
    async fn report_resolution_progress(
        &self,
        request: Request<pb::ReportResolutionProgressRequest>,
    ) -> Result<Response<pb::ReportResolutionProgressResponse>, Status> {
        handle!(request, |ctx, req| self.report_progress(&ctx, &req), |r| {
            pb::ReportResolutionProgressResponse {
                resolution: Some(r),
            }
        })
    }

    #[tracing::instrument(skip_all)]
    async fn cancel_resolution(
        &self,
        request: Request<pb::CancelResolutionRequest>,
    ) -> Result<Response<pb::CancelResolutionResponse>, Status> {
        handle!(
            request,
            |ctx, req| self.cancel_resolution(&ctx, &req),
            |r| pb::CancelResolutionResponse {
                resolution: Some(r)
            }
        )
    }
}
