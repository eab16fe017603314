//! Request ids belong to their caller.

use super::*;

on_both_databases!(request_ids_belong_to_their_caller,);

/// Every create of the meeting service, sent by two secretaries under the same request id:
/// each gets its own resource, and each one's retry replays its own.
async fn request_ids_belong_to_their_caller(b: Backend) {
    use pb::Position as P;
    use pb::Seat as S;
    let e = env(b).await;
    let mut wg = e.wg.clone();
    let as_sec = |sub: &str| {
        e.keys
            .bearer_with(Role::Secretary, |r| r.subject = sub.into())
    };
    let (sa, sb) = (as_sec("secretary-a"), as_sec("secretary-b"));
    let group_req = pb::CreateWorkingGroupRequest {
        request_id: "story-group-1".into(),
        working_group: Some(pb::WorkingGroup {
            province: "اردبیل".into(),
            title: "کارگروه استانی".into(),
            ..Default::default()
        }),
    };
    let create_group = |who: &String| {
        let mut wg = e.wg.clone();
        let req = authed(who.clone(), group_req.clone());
        async move {
            wg.create_working_group(req)
                .await
                .unwrap()
                .into_inner()
                .working_group
                .unwrap()
        }
    };
    let ga = create_group(&sa).await;
    let gb = create_group(&sb).await;
    assert_ne!(ga.name, gb.name);
    assert_eq!(create_group(&sa).await.name, ga.name);

    // SeatMember: both secretaries seat a chair and an official under the same ids.
    let seat = |g: &pb::WorkingGroup, n: u32, seat: S, position: P| {
        seat_request(g, n, seat, position, format!("story-seat-{n}"))
    };
    let mut seated = Vec::new();
    for (g, who) in [(&ga, &sa), (&gb, &sb)] {
        let mut names = Vec::new();
        for (n, s, p) in [
            (1, S::Chair, P::Unspecified),
            (2, S::Official, P::ChiefInspector),
        ] {
            let m = wg
                .seat_member(authed(who.clone(), seat(g, n, s, p)))
                .await
                .unwrap();
            let m = m.into_inner().member.unwrap();
            assert!(m.name.starts_with(&g.name), "{} in {}", m.name, g.name);
            names.push(m.name);
        }
        seated.push(names);
    }
    let again = wg
        .seat_member(authed(sa.clone(), seat(&ga, 1, S::Chair, P::Unspecified)))
        .await;
    assert_eq!(
        again.unwrap().into_inner().member.unwrap().name,
        seated[0][0]
    );

    // ScheduleMeeting and, once each meeting is in session, RecordResolution.
    let mut resolutions = Vec::new();
    for (i, (g, who)) in [(&ga, &sa), (&gb, &sb)].into_iter().enumerate() {
        let schedule = pb::ScheduleMeetingRequest {
            parent: g.name.clone(),
            request_id: "story-meeting-1".into(),
            meeting: Some(pb::Meeting {
                title: "نخستین جلسه".into(),
                place: "دادگستری استان اردبیل".into(),
                scheduled_time: Some(secs_from_now(3600)),
                ..Default::default()
            }),
        };
        let m = wg
            .schedule_meeting(authed(who.clone(), schedule.clone()))
            .await
            .unwrap();
        let m = m.into_inner().meeting.unwrap();
        assert!(m.name.starts_with(&g.name));
        let replay = wg
            .schedule_meeting(authed(who.clone(), schedule))
            .await
            .unwrap();
        assert_eq!(replay.into_inner().meeting.unwrap().name, m.name);
        wg.set_agenda(authed(
            who.clone(),
            pb::SetAgendaRequest {
                name: m.name.clone(),
                etag: String::new(),
                items: vec![pb::AgendaItem {
                    title: "گزارش ارجاع‌ها".into(),
                    standing_report: true,
                    ..Default::default()
                }],
            },
        ))
        .await
        .unwrap();
        wg.finalize_agenda(authed(
            who.clone(),
            pb::FinalizeAgendaRequest {
                name: m.name.clone(),
                etag: String::new(),
            },
        ))
        .await
        .unwrap();
        let present = seated[i]
            .iter()
            .map(|member| pb::Attendance {
                member: member.clone(),
                status: pb::AttendanceStatus::Present as i32,
                substitute_name: String::new(),
            })
            .collect();
        wg.record_attendance(authed(
            who.clone(),
            pb::RecordAttendanceRequest {
                name: m.name.clone(),
                etag: String::new(),
                attendance: present,
                deputy_chair: String::new(),
            },
        ))
        .await
        .unwrap();
        wg.start_meeting(authed(
            who.clone(),
            pb::StartMeetingRequest {
                name: m.name.clone(),
                etag: String::new(),
            },
        ))
        .await
        .unwrap();
        let resolve = pb::RecordResolutionRequest {
            name: m.name.clone(),
            request_id: "story-resolution-1".into(),
            text: "تشکیل دبیرخانهٔ کارگروه".into(),
            votes: seated[i]
                .iter()
                .map(|member| pb::CastVote {
                    member: member.clone(),
                    vote: pb::Vote::For as i32,
                })
                .collect(),
            ..Default::default()
        };
        let r = wg
            .record_resolution(authed(who.clone(), resolve.clone()))
            .await
            .unwrap();
        let r = r.into_inner().resolution.unwrap();
        let replay = wg
            .record_resolution(authed(who.clone(), resolve))
            .await
            .unwrap();
        assert_eq!(replay.into_inner().resolution.unwrap().name, r.name);
        resolutions.push(r.name);
    }
    assert_ne!(resolutions[0], resolutions[1]);
    assert!(resolutions[1].starts_with(&gb.name));
}
