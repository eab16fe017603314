//! Lists: paging, filters and the folded search.

use super::*;

on_both_databases!(
    paging_through_1000_institutions_returns_each_once,
    list_filters_and_folded_search,
    typed_query_is_folded_as_the_stored_name,
);

async fn paging_through_1000_institutions_returns_each_once(b: Backend) {
    let app = app(b).await;
    let mut created = std::collections::BTreeSet::new();
    let mut tasks = Vec::new();
    for chunk in 0..4u32 {
        let c = app.client.clone();
        let bearer = app.keys.bearer(Role::Admin, None);
        tasks.push(tokio::spawn(async move {
            let mut c = c;
            let mut names = Vec::new();
            for i in 0..250u32 {
                let n = 100 + chunk * 250 + i;
                let mut r = Request::new(pb::CreateInstitutionRequest {
                    request_id: String::new(),
                    institution: Some(institution(n)),
                });
                r.metadata_mut()
                    .insert("authorization", bearer.parse().unwrap());
                names.push(
                    c.create_institution(r)
                        .await
                        .unwrap()
                        .into_inner()
                        .institution
                        .unwrap()
                        .name,
                );
            }
            names
        }));
    }
    for t in tasks {
        created.extend(t.await.unwrap());
    }
    assert_eq!(created.len(), 1000);
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let r = app
            .client
            .clone()
            .list_institutions(app.admin(pb::ListInstitutionsRequest {
                page_size: 77,
                page_token: token.clone(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        seen.extend(r.institutions.into_iter().map(|i| i.name));
        if r.next_page_token.is_empty() {
            break;
        }
        token = r.next_page_token;
    }
    assert_eq!(pages, 1000usize.div_ceil(77));
    assert_eq!(seen.len(), 1000, "no row twice");
    assert_eq!(
        seen.iter()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        created
    );
    // A page token used with other filters is refused.
    let first = app
        .client
        .clone()
        .list_institutions(app.admin(pb::ListInstitutionsRequest {
            page_size: 10,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let e = app
        .client
        .clone()
        .list_institutions(app.admin(pb::ListInstitutionsRequest {
            page_size: 10,
            page_token: first.next_page_token,
            query: "x".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(fields(&e), ["page_token"]);
}

async fn list_filters_and_folded_search(b: Backend) {
    let app = app(b).await;
    let mut c = app.client.clone();
    let a = app.create(6).await;
    let mut other = institution(7);
    other.display_name = "انجمن پيشگيري از جرم".into();
    other.province = "تهران".into();
    other.activity_areas = vec![ActivityArea::CrimePrevention as i32];
    c.create_institution(app.admin(pb::CreateInstitutionRequest {
        request_id: String::new(),
        institution: Some(other),
    }))
    .await
    .unwrap();
    let names = |r: pb::ListInstitutionsResponse| {
        r.institutions
            .into_iter()
            .map(|i| i.display_name)
            .collect::<Vec<_>>()
    };
    let found = c
        .list_institutions(app.admin(pb::ListInstitutionsRequest {
            query: "پیشگیری".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(names(found), ["انجمن پیشگیری از جرم"]);
    let by_province = c
        .list_institutions(app.admin(pb::ListInstitutionsRequest {
            province: "اردبيل".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_province.institutions.len(), 1);
    let by_area = c
        .list_institutions(app.admin(pb::ListInstitutionsRequest {
            activity_area: ActivityArea::Women as i32,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_area.institutions[0].name, a.name);
    let l = app.apply(&a, now_secs() + 86400).await;
    app.approve(&l).await;
    let active = c
        .list_institutions(app.admin(pb::ListInstitutionsRequest {
            licence_state: pb::LicenceState::Active as i32,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        active
            .institutions
            .iter()
            .map(|i| i.name.clone())
            .collect::<Vec<_>>(),
        std::slice::from_ref(&a.name)
    );
    // A judicial officer sees representatives' codes masked.
    let seen = c
        .get_institution(app.as_role(
            Role::JudicialOfficer,
            pb::GetInstitutionRequest {
                name: a.name.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .institution
        .unwrap();
    assert!(seen.representatives[0].national_code.starts_with("******"));
}

async fn typed_query_is_folded_as_the_stored_name(b: Backend) {
    let app = app(b).await;
    let mut c = app.client.clone();
    app.create(60).await;
    let mut i = institution(61);
    i.display_name = "انجمن حمايت از زنان".into();
    let created = c
        .create_institution(app.admin(pb::CreateInstitutionRequest {
            request_id: String::new(),
            institution: Some(i),
        }))
        .await
        .unwrap()
        .into_inner()
        .institution
        .unwrap();
    // Tatweel, diacritics, Arabic yeh, ZWNJ and digits as people type them.
    for query in ["حمـــایت", "حِمایَت", "حمايت", "حما\u{200C}یت", "زنان  "]
    {
        let found = c
            .list_institutions(app.admin(pb::ListInstitutionsRequest {
                query: query.into(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            found
                .institutions
                .iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>(),
            [created.name.as_str()],
            "{query:?}"
        );
    }
}
