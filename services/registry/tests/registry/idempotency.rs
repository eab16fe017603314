//! Retried creates and whose request ids they are.

use super::*;

on_both_databases!(
    retried_create_makes_one_row,
    request_ids_belong_to_their_caller,
);

async fn retried_create_makes_one_row(b: Backend) {
    let app = app(b).await;
    let mut c = app.client.clone();
    let req = pb::CreateInstitutionRequest {
        request_id: "retry-0001".into(),
        institution: Some(institution(4)),
    };
    let a = c
        .create_institution(app.admin(req.clone()))
        .await
        .unwrap()
        .into_inner();
    let b2 = c
        .create_institution(app.admin(req.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(a, b2);
    // What the create returned (built without reading the row back) is what is stored.
    let stored = c
        .get_institution(app.admin(pb::GetInstitutionRequest {
            name: a.institution.as_ref().unwrap().name.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(a.institution, stored.institution);
    let list = c
        .list_institutions(app.admin(pb::ListInstitutionsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.institutions.len(), 1);
    // The same id with another request is refused.
    let mut other = req.clone();
    other.institution.as_mut().unwrap().display_name = "دیگری".into();
    let e = c.create_institution(app.admin(other)).await.unwrap_err();
    assert_eq!(
        (e.code(), fields(&e)),
        (Code::InvalidArgument, vec!["request_id".to_string()])
    );
}

/// A request id is the caller's own: another officer sending the same id gets an answer of
/// its own (a new resource, or the refusal its own request earns), never the first caller's
/// resource and never "already used"; the first caller's retry still replays.
async fn request_ids_belong_to_their_caller(b: Backend) {
    let app = app(b).await;
    let mut c = app.client.clone();
    let other = |msg| {
        app.req(
            app.keys
                .bearer_with(Role::Admin, |r| r.subject = "another-admin".into()),
            msg,
        )
    };
    let first = pb::CreateInstitutionRequest {
        request_id: "story-institution-1".into(),
        institution: Some(institution(31)),
    };
    let a = c
        .create_institution(app.admin(first.clone()))
        .await
        .unwrap()
        .into_inner();
    // The same request under the same id from another caller is processed as its own: the
    // national ID is taken, so it is ALREADY_EXISTS, not the first caller's record.
    let same = c
        .create_institution(other(first.clone()))
        .await
        .unwrap_err();
    assert_eq!(same.code(), Code::AlreadyExists, "{same:?}");
    // Another request under the same id from another caller makes its own institution.
    let b2 = c
        .create_institution(other(pb::CreateInstitutionRequest {
            request_id: "story-institution-1".into(),
            institution: Some(institution(32)),
        }))
        .await
        .unwrap()
        .into_inner();
    let (ia, ib) = (a.institution.unwrap(), b2.institution.unwrap());
    assert_ne!(ia.name, ib.name);
    assert_eq!(ib.national_id, legal_id(32));
    // Each caller's retry replays its own answer.
    let again = c
        .create_institution(app.admin(first.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.institution.unwrap().name, ia.name);
    // Another institution token with the same subject is another caller too.
    let officer = |inst: &str, msg| {
        app.req(
            app.keys.bearer_with(Role::RegistryOfficer, |r| {
                r.subject = "officer".into();
                r.authority = Some(inst.into());
            }),
            msg,
        )
    };
    // One validity for every send: a retry is the same request to the byte.
    let until = now_secs() + 365 * 86400;
    let lic = |parent: &str| pb::CreateLicenceRequest {
        parent: parent.to_owned(),
        request_id: "story-licence-1".into(),
        licence: Some(licence(until)),
    };
    let la = c
        .create_licence(officer("a", lic(&ia.name)))
        .await
        .unwrap()
        .into_inner()
        .licence
        .unwrap();
    let lb = c
        .create_licence(officer("b", lic(&ib.name)))
        .await
        .unwrap()
        .into_inner()
        .licence
        .unwrap();
    assert_ne!(la.name, lb.name);
    assert!(
        lb.name.starts_with(&ib.name),
        "{} under {}",
        lb.name,
        ib.name
    );
    let la2 = c
        .create_licence(officer("a", lic(&ia.name)))
        .await
        .unwrap()
        .into_inner()
        .licence
        .unwrap();
    assert_eq!(la2.name, la.name);
    // The same caller reusing its id for another request is still refused, naming the field.
    let reused = c
        .create_licence(officer("a", lic(&ib.name)))
        .await
        .unwrap_err();
    assert_eq!(reused.code(), Code::InvalidArgument);
    let br = reused.get_error_details().bad_request().cloned().unwrap();
    assert_eq!(br.field_violations[0].field, "request_id");
}
