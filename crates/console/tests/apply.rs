#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The public application form in-process: both languages, the live check of one field (as
//! htmx asks it), a draft saved and resumed from another browser, field errors in the page's
//! language, and a submission approved at once with its activation code.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use std::sync::Arc;
use store::Store;
use tower::ServiceExt;

struct World {
    router: axum::Router,
    /// The client address every request comes from, as `easypos up` records it.
    address: Option<std::net::SocketAddr>,
    _backend: store::testing::TestBackend,
    _documents: store::testing::tempdir::TempDir,
}

async fn world() -> World {
    world_limited(onboarding::limits::ApplicationLimits::default(), None).await
}

async fn world_limited(
    limits: onboarding::limits::ApplicationLimits,
    address: Option<std::net::SocketAddr>,
) -> World {
    let backend = store::testing::sqlite();
    let store = Arc::new(Store::open(&backend.backend).await.unwrap());
    let hsm: Arc<dyn hsm::Hsm> = Arc::new(hsm::SoftHsm::new(&[0x42; 32]).unwrap());
    demo::seed(&store, hsm.as_ref()).await.unwrap();
    let documents = store::testing::tempdir::TempDir::new();
    let api_state = api::ApiState::new(store.clone());
    let onboarding = onboarding::service::Onboarding {
        store: store.clone(),
        hsm: hsm.clone(),
        clock: Arc::new(store::SystemClock),
        settings: onboarding::service::Settings {
            acquirer: demo::ACQUIRER,
            host_address: "127.0.0.1:8583".into(),
            documents_dir: documents.path().to_owned(),
            activation_code_seconds: 86_400,
            cvm_limit: "300.00".into(),
        },
        host: Arc::new(onboarding::service::NoHost),
        limits: Arc::new(limits),
    };
    let mfa = console::mfa::Mfa::ensure(&store, hsm).await.unwrap();
    let router = console::router(console::Console::new(api_state, mfa).with_onboarding(onboarding));
    World {
        router,
        address,
        _backend: backend,
        _documents: documents,
    }
}

struct Page {
    status: StatusCode,
    cookies: Vec<String>,
    location: Option<String>,
    html: String,
}

impl Page {
    fn csrf(&self) -> String {
        let start = self.html.find("name=\"csrf\" value=\"").unwrap() + 19;
        self.html[start..].split('"').next().unwrap().to_owned()
    }

    fn cookie(&self, name: &str) -> Option<String> {
        self.cookies
            .iter()
            .find(|cookie| cookie.starts_with(&format!("{name}=")))
            .map(|cookie| cookie.split(';').next().unwrap().to_owned())
    }
}

impl World {
    async fn send(
        &self,
        method: &str,
        path: &str,
        cookies: &[String],
        lang: &str,
        headers: &[(&str, &str)],
        body: String,
    ) -> Page {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("accept-language", lang)
            .header("content-type", "application/x-www-form-urlencoded");
        if !cookies.is_empty() {
            request = request.header("cookie", cookies.join("; "));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut request = request.body(Body::from(body)).unwrap();
        if let Some(address) = self.address {
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(address));
        }
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let cookies = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|value| value.to_str().unwrap().to_owned())
            .collect();
        let location = response
            .headers()
            .get("location")
            .map(|value| value.to_str().unwrap().to_owned());
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Page {
            status,
            cookies,
            location,
            html: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }
}

fn encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(name, value)| {
            let value: String = value
                .bytes()
                .map(|byte| match byte {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                        char::from(byte).to_string()
                    }
                    other => format!("%{other:02X}"),
                })
                .collect();
            format!("{name}={value}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[tokio::test]
async fn the_form_in_chinese_checks_fields_saves_a_draft_and_submits() {
    let world = world().await;
    let zh = "zh-CN,zh;q=0.9";
    let form = world
        .send("GET", "/console/apply", &[], zh, &[], String::new())
        .await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(
        form.html.contains("统一社会信用代码") && form.html.contains("快餐店、咖啡馆、茶饮店"),
        "{}",
        form.html
    );
    assert!(
        !form.html.contains("博彩"),
        "prohibited categories are not offered"
    );
    let session = form.cookie("ep_session").unwrap();
    let csrf = form.csrf();

    // The live check of one field, as htmx posts it.
    let bad = world
        .send(
            "POST",
            "/console/apply/check",
            std::slice::from_ref(&session),
            zh,
            &[("hx-trigger-name", "credit_code")],
            encode(&[("csrf", &csrf), ("credit_code", "91350100M000100Y44")]),
        )
        .await;
    assert_eq!(bad.status, StatusCode::OK);
    assert!(
        bad.html.contains("id=\"error-credit_code\"")
            && bad.html.contains("校验位不符合GB 32100规则"),
        "{}",
        bad.html
    );
    let good = world
        .send(
            "POST",
            "/console/apply/check",
            std::slice::from_ref(&session),
            zh,
            &[("hx-trigger-name", "credit_code")],
            encode(&[("credit_code", "91350100M000100Y43")]),
        )
        .await;
    assert!(
        good.html.contains("role=\"alert\"></span>"),
        "{}",
        good.html
    );
    let english = world
        .send(
            "POST",
            "/console/apply/check",
            std::slice::from_ref(&session),
            "en",
            &[("hx-trigger-name", "id_number")],
            encode(&[("id_number", "110105194912310021")]),
        )
        .await;
    assert!(
        english.html.contains("ISO 7064 MOD 11-2"),
        "{}",
        english.html
    );

    // A draft: saved, with a tracking number and a resume code.
    let card = demo::with_luhn("621700000000000001");
    let draft = world
        .send(
            "POST",
            "/console/apply",
            std::slice::from_ref(&session),
            zh,
            &[],
            encode(&[
                ("csrf", &csrf),
                ("action", "save"),
                ("business_name", "静安茶馆"),
                ("settlement_card", &card),
            ]),
        )
        .await;
    assert_eq!(draft.status, StatusCode::OK, "{}", draft.html);
    assert!(draft.html.contains("草稿已保存"));
    assert!(
        !draft.html.contains(&card),
        "the card number is not shown back"
    );
    let tracking = draft
        .html
        .split("id=\"tracking\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    let token = draft
        .html
        .split("id=\"resume-token\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    let remembered = draft.cookie("ep_application").unwrap();

    // Documents: a picture is kept; anything else is refused with its reason.
    let upload = |kind: &str, bytes: &[u8]| {
        let mut body = Vec::new();
        for (name, value) in [("csrf", csrf.as_bytes()), ("kind", kind.as_bytes())] {
            body.extend_from_slice(
                format!("--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n")
                    .as_bytes(),
            );
            body.extend_from_slice(value);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\nContent-Type: application/octet-stream\r\n\r\n");
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n--XyZ--\r\n");
        body
    };
    let send_upload = |body: Vec<u8>| {
        let world = &world;
        let cookies = [session.clone(), remembered.clone()];
        async move {
            let request = Request::builder()
                .method("POST")
                .uri("/console/apply/documents")
                .header("accept-language", "zh-CN")
                .header("content-type", "multipart/form-data; boundary=XyZ")
                .header("cookie", cookies.join("; "))
                .body(Body::from(body))
                .unwrap();
            let response = world.router.clone().oneshot(request).await.unwrap();
            let status = response.status();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8_lossy(&bytes).into_owned())
        }
    };
    let (status, html) = send_upload(upload("licence", b"\x89PNG\r\n\x1a\nthe licence")).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains("材料已上传") && html.contains("营业执照: image/png"),
        "{html}"
    );
    let (status, html) = send_upload(upload("id_front", b"GIF89a a gif")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("文件须为JPEG、PNG或PDF格式"), "{html}");

    // Another browser resumes it with the tracking number and the code.
    let other = world
        .send("GET", "/console/apply/resume", &[], zh, &[], String::new())
        .await;
    let other_session = other.cookie("ep_session").unwrap();
    let wrong = world
        .send(
            "POST",
            "/console/apply/resume",
            std::slice::from_ref(&other_session),
            zh,
            &[],
            encode(&[
                ("csrf", &other.csrf()),
                ("tracking", &tracking),
                ("token", "nope"),
            ]),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::NOT_FOUND);
    let resumed = world
        .send(
            "POST",
            "/console/apply/resume",
            std::slice::from_ref(&other_session),
            zh,
            &[],
            encode(&[
                ("csrf", &other.csrf()),
                ("tracking", &tracking),
                ("token", &token),
            ]),
        )
        .await;
    assert_eq!(resumed.location.as_deref(), Some("/console/apply"));
    let cookies = vec![
        other_session.clone(),
        resumed.cookie("ep_application").unwrap(),
    ];
    let again = world
        .send("GET", "/console/apply", &cookies, zh, &[], String::new())
        .await;
    assert!(
        again.html.contains("静安茶馆") && again.html.contains("621700*********"),
        "{}",
        again.html
    );

    // Submitting with mistakes: each message beside its field, in Chinese.
    let cookies = vec![again.cookie("ep_session").unwrap(), cookies[1].clone()];
    let masked = again
        .html
        .split("name=\"settlement_card\" id=\"field-settlement_card\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let mut fields = vec![
        ("csrf", again.csrf()),
        ("action", "submit".to_owned()),
        ("business_name", "静安茶馆".to_owned()),
        ("credit_code", "91350100M000100Y43".to_owned()),
        ("legal_name", "陈静".to_owned()),
        ("id_number", "11010519491231002X".to_owned()),
        ("mobile", "1381234567".to_owned()),
        ("address", "愚园路100号".to_owned()),
        ("city", "上海".to_owned()),
        ("mcc", "5814".to_owned()),
        ("settlement_card", masked.clone()),
        ("bank", "黄浦商业银行".to_owned()),
        ("monthly_volume", "80000".to_owned()),
        ("terminal_count", "1".to_owned()),
        ("terminal_kind", "countertop".to_owned()),
    ];
    let body = |fields: &[(&str, String)]| {
        encode(
            &fields
                .iter()
                .map(|(n, v)| (*n, v.as_str()))
                .collect::<Vec<_>>(),
        )
    };
    let refused = world
        .send("POST", "/console/apply", &cookies, zh, &[], body(&fields))
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.html
    );
    assert!(
        refused.html.contains("手机号码应为11位") && refused.html.contains("请同意服务条款及审核"),
        "{}",
        refused.html
    );
    fields[6].1 = "13812345678".to_owned();
    fields.push(("consent", "on".to_owned()));
    let approved = world
        .send("POST", "/console/apply", &cookies, zh, &[], body(&fields))
        .await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.html);
    assert!(
        approved.html.contains("已通过") && approved.html.contains("class=\"activation-code\""),
        "{}",
        approved.html
    );
    assert!(
        approved.html.contains("89831005814"),
        "an MID of Shanghai for a café"
    );
    // The first browser, on the status page, sees the outcome (the codes are shown once).
    let status = world
        .send(
            "GET",
            "/console/apply/status",
            &[session, remembered],
            zh,
            &[],
            String::new(),
        )
        .await;
    assert!(
        status.html.contains("已通过") && !status.html.contains("activation-code"),
        "{}",
        status.html
    );
}

#[test]
fn every_field_and_fault_has_a_message_in_both_languages() {
    for (lang, source) in console::i18n::SOURCES {
        let ids = console::i18n::message_ids(source).unwrap();
        let mut wanted: Vec<String> = onboarding::validate::CODES
            .iter()
            .map(|(code, _)| format!("onb-err-{code}"))
            .collect();
        for (name, _) in onboarding::application::Form::default().fields() {
            wanted.push(format!("apply-{}", name.replace('_', "-")));
            wanted.push(format!("apply-hint-{}", name.replace('_', "-")));
        }
        for status in onboarding::application::Status::ALL {
            wanted.push(format!(
                "apply-status-{}",
                status.as_str().replace('_', "-")
            ));
            wanted.push(format!(
                "apply-status-note-{}",
                status.as_str().replace('_', "-")
            ));
        }
        for status in onboarding::terminals::TerminalStatus::ALL {
            wanted.push(format!("fleet-status-{}", status.as_str()));
        }
        for kind in onboarding::http::DOCUMENT_KINDS {
            wanted.push(format!("apply-doc-{}", kind.replace('_', "-")));
        }
        for kind in onboarding::validate::TERMINAL_KINDS {
            wanted.push(format!("apply-kind-{kind}"));
        }
        let missing: Vec<&String> = wanted.iter().filter(|id| !ids.contains(id)).collect();
        assert!(missing.is_empty(), "{lang:?} lacks {missing:?}");
    }
}

#[tokio::test]
async fn too_many_new_applications_from_one_address_get_429_with_the_reason() {
    let world = world_limited(
        onboarding::limits::ApplicationLimits::new(1, 5),
        Some("10.0.0.9:50000".parse().unwrap()),
    )
    .await;
    let zh = "zh-CN,zh;q=0.9";
    let form = world
        .send("GET", "/console/apply", &[], zh, &[], String::new())
        .await;
    let session = form.cookie("ep_session").unwrap();
    let csrf = form.csrf();
    let draft = encode(&[
        ("csrf", &csrf),
        ("action", "save"),
        ("business_name", "静安茶馆"),
    ]);
    let first = world
        .send(
            "POST",
            "/console/apply",
            std::slice::from_ref(&session),
            zh,
            &[],
            draft.clone(),
        )
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.html);
    // Another new application from the same address (no application cookie): refused.
    let second = world
        .send(
            "POST",
            "/console/apply",
            std::slice::from_ref(&session),
            zh,
            &[],
            draft,
        )
        .await;
    assert_eq!(
        second.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        second.html
    );
    assert!(second.html.contains("发起的申请过多"), "{}", second.html);
    assert!(second.html.contains("静安茶馆"), "what was typed is kept");
}
