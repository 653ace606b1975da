#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The console in-process: languages, the vendored script, sign-in with CSRF and session
//! rotation, the idle timeout, every portal's pages for every role, and tenant isolation by URL.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use std::collections::BTreeSet;
use std::sync::Arc;
use store::journal::JournalEntry;
use store::{ManualClock, Store};
use tower::ServiceExt;

const NOW_SECONDS: u64 = 1_764_000_000;

struct World {
    store: Arc<Store>,
    clock: Arc<ManualClock>,
    mfa: console::mfa::Mfa,
    router: axum::Router,
    /// Journal ids: a Shanghai sale (CH001's card) and a Beijing sale (CH002's card).
    shanghai_sale: i64,
    beijing_sale: i64,
    /// The acquirer's receipt keys, as the host shares them.
    receipts: Arc<aftersale::ReceiptKeys>,
    onboarding: onboarding::service::Onboarding,
    _backend: store::testing::TestBackend,
    _documents: store::testing::tempdir::TempDir,
}

fn masked(card_id: &str) -> String {
    demo::cards()
        .into_iter()
        .find(|card| card.card.id == card_id)
        .unwrap()
        .card
        .masked_pan()
}

/// A refund path that posts every part (the acquirer's own is tested in crates/acquirer).
#[derive(Debug)]
struct PostsEverything;

impl aftersale::refunds::RefundPoster for PostsEverything {
    fn undone<'a>(
        &'a self,
        _sale: &'a aftersale::refunds::SaleKey,
    ) -> aftersale::refunds::BoxFuture<
        'a,
        Result<aftersale::refunds::TerminalUndo, aftersale::refunds::PostError>,
    > {
        Box::pin(async { Ok(aftersale::refunds::TerminalUndo::Nothing) })
    }

    fn post<'a>(
        &'a self,
        _part: &'a aftersale::refunds::RefundPart,
    ) -> aftersale::refunds::BoxFuture<
        'a,
        Result<aftersale::refunds::Posting, aftersale::refunds::PostError>,
    > {
        Box::pin(async { Ok(aftersale::refunds::Posting::Refunded) })
    }

    fn chargeback<'a>(
        &'a self,
        _sale: &'a aftersale::refunds::SaleKey,
        _amount: money::Amount,
        _step: aftersale::refunds::ChargebackStep,
    ) -> aftersale::refunds::BoxFuture<
        'a,
        Result<aftersale::refunds::Posting, aftersale::refunds::PostError>,
    > {
        Box::pin(async { Ok(aftersale::refunds::Posting::Refunded) })
    }
}

async fn world() -> World {
    let backend = store::testing::sqlite();
    let store = Arc::new(Store::open(&backend.backend).await.unwrap());
    demo::seed(&store, &hsm::SoftHsm::new(&[0x42; 32]).unwrap())
        .await
        .unwrap();
    let sale = |merchant: &str, terminal: &str, card: &str, rrn: &str, at: i64| JournalEntry {
        received_at: at,
        terminal_id: terminal.into(),
        merchant_id: merchant.into(),
        mti: "0200".into(),
        kind: "Sale".into(),
        batch: Some(1),
        stan: Some(1),
        amount_minor: Some(1_250),
        currency: Some(156),
        card: Some(masked(card)),
        response: Some("00".into()),
        rrn: Some(rrn.into()),
        auth_code: Some("654321".into()),
        ..JournalEntry::default()
    };
    let now_micros = NOW_SECONDS as i64 * 1_000_000;
    store
        .journal(vec![
            JournalEntry {
                risk: Some("terminal-velocity(alert,10): 31 authorizations on the terminal in 600 s (at most 30); outside-hours(alert,5): at 23:40 local, outside business hours 07:00-23:30".into()),
                ..sale(
                    demo::SHANGHAI_MERCHANT,
                    "10000001",
                    "card-CH001-D",
                    "RRNSHANGHAI1",
                    now_micros - 60_000_000,
                )
            },
            sale(
                demo::BEIJING_MERCHANT,
                "20000001",
                "card-CH002-C",
                "RRNBEIJING01",
                now_micros - 30_000_000,
            ),
        ])
        .await
        .unwrap();
    let all = store
        .transactions(&store::accounts::TransactionFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let id_of = |rrn: &str| {
        all.iter()
            .find(|record| record.rrn.as_deref() == Some(rrn))
            .unwrap()
            .id
    };
    let clock = Arc::new(ManualClock::new(NOW_SECONDS * 1_000_000_000));
    let hsm: Arc<dyn hsm::Hsm> = Arc::new(hsm::SoftHsm::new(&[0x42; 32]).unwrap());
    let receipts = Arc::new(
        aftersale::ReceiptKeys::load(store.clone(), hsm.clone(), NOW_SECONDS as i64)
            .await
            .unwrap(),
    );
    let documents = store::testing::tempdir::TempDir::new();
    let api_state = api::ApiState {
        webhooks: None,
        freezes: Default::default(),
        store: store.clone(),
        clock: clock.clone(),
        receipts: Some(receipts.clone()),
        refunds: Some(Arc::new(
            aftersale::refunds::Refunds::new(store.clone(), Arc::new(PostsEverything))
                .with_approval_above(1_000),
        )),
        disputes: Some(Arc::new(aftersale::disputes::Disputes::new(
            store.clone(),
            Arc::new(PostsEverything),
        ))),
        anchors: Some(Arc::new(api::audit_anchors::AuditAnchorer::new(
            store.clone(),
            hsm.clone(),
        ))),
        alert_senders: Default::default(),
        documents_dir: Some(documents.path().to_owned()),
        incident_targets: api::incidents::ResponseTargets::default(),
        hsm: None,
    };
    let mfa = console::mfa::Mfa::ensure(&store, hsm.clone())
        .await
        .unwrap();
    let onboarding = onboarding::service::Onboarding {
        store: store.clone(),
        hsm,
        clock: clock.clone(),
        settings: onboarding::service::Settings {
            acquirer: demo::ACQUIRER,
            host_address: "127.0.0.1:8583".into(),
            documents_dir: documents.path().to_owned(),
            activation_code_seconds: 86_400,
            cvm_limit: "300.00".into(),
        },
        host: Arc::new(onboarding::service::NoHost),
        limits: Arc::default(),
    };
    let router = console::router(
        console::Console::new(api_state, mfa.clone()).with_onboarding(onboarding.clone()),
    );
    World {
        onboarding,
        _documents: documents,
        mfa,
        shanghai_sale: id_of("RRNSHANGHAI1"),
        beijing_sale: id_of("RRNBEIJING01"),
        receipts,
        store,
        clock,
        router,
        _backend: backend,
    }
}

struct Page {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    html: String,
}

impl Page {
    fn set_cookie(&self) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|value| value.to_str().unwrap().to_owned())
            .find(|cookie| cookie.starts_with("ep_session="))
    }

    fn session(&self) -> String {
        let cookie = self.set_cookie().expect("a session cookie");
        cookie
            .split(';')
            .next()
            .unwrap()
            .trim_start_matches("ep_session=")
            .to_owned()
    }

    fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.html.find(marker).expect("a CSRF field") + marker.len();
        self.html[start..start + 64].to_owned()
    }

    fn location(&self) -> String {
        self.headers["location"].to_str().unwrap().to_owned()
    }
}

impl World {
    async fn send(&self, request: Request<Body>) -> Page {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Page {
            status,
            headers,
            html: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn get(&self, path: &str, session: Option<&str>, extra: &[(&str, &str)]) -> Page {
        let mut request = Request::get(path);
        let mut cookies = Vec::new();
        if let Some(session) = session {
            cookies.push(format!("ep_session={session}"));
        }
        for (name, value) in extra {
            if *name == "cookie" {
                cookies.push((*value).to_owned());
            } else {
                request = request.header(*name, *value);
            }
        }
        if !cookies.is_empty() {
            request = request.header("cookie", cookies.join("; "));
        }
        self.send(request.body(Body::empty()).unwrap()).await
    }

    async fn post(&self, path: &str, session: Option<&str>, form: &str) -> Page {
        let mut request =
            Request::post(path).header("content-type", "application/x-www-form-urlencoded");
        if let Some(session) = session {
            request = request.header("cookie", format!("ep_session={session}"));
        }
        self.send(request.body(Body::from(form.to_owned())).unwrap())
            .await
    }

    fn now(&self) -> i64 {
        use store::Clock;
        (self.clock.now() / 1_000_000_000) as i64
    }

    /// The code a user's authenticator shows now (the user must have an enrolment).
    async fn code(&self, username: &str) -> String {
        let user = self
            .store
            .user_by_username(username)
            .await
            .unwrap()
            .unwrap();
        let secret = self
            .mfa
            .secret(&user.id, user.totp_nonce.as_deref().unwrap())
            .unwrap();
        format!("{:06}", console::mfa::totp(&secret, self.now()))
    }

    /// Signs in (with a TOTP code when the role needs one) and returns the session id.
    async fn sign_in(&self, username: &str) -> String {
        let form = self.get("/console/login", None, &[]).await;
        let answer = self
            .post(
                "/console/login",
                Some(&form.session()),
                &format!(
                    "username={username}&password={}&csrf={}",
                    demo::DEMO_PASSWORD,
                    form.csrf()
                ),
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::SEE_OTHER,
            "{username}: {}",
            answer.html
        );
        if answer.location() != "/console/mfa" {
            return answer.session();
        }
        // A code is good once: each sign-in uses a new time step.
        self.clock.advance(30 * 1_000_000_000);
        let pending = answer.session();
        let page = self.get("/console/mfa", Some(&pending), &[]).await;
        let form = format!("code={}&csrf={}", self.code(username).await, page.csrf());
        let done = self.post("/console/mfa", Some(&pending), &form).await;
        assert_eq!(
            done.status,
            StatusCode::SEE_OTHER,
            "{username}: {}",
            done.html
        );
        done.session()
    }
}

#[test]
fn both_languages_have_the_same_messages_and_templates_use_only_those() {
    let ids: Vec<BTreeSet<String>> = console::i18n::SOURCES
        .iter()
        .map(|(lang, source)| {
            console::i18n::message_ids(source)
                .unwrap_or_else(|error| panic!("{lang:?}: {error}"))
                .into_iter()
                .collect()
        })
        .collect();
    let only_en: Vec<_> = ids[0].difference(&ids[1]).collect();
    let only_zh: Vec<_> = ids[1].difference(&ids[0]).collect();
    assert!(
        only_en.is_empty() && only_zh.is_empty(),
        "only in en: {only_en:?}; only in zh-CN: {only_zh:?}"
    );

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut used = BTreeSet::new();
    let mut sources: Vec<String> = std::fs::read_dir(dir.join("templates"))
        .unwrap()
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
        .collect();
    sources.push(std::fs::read_to_string(dir.join("src/pages.rs")).unwrap());
    sources.push(std::fs::read_to_string(dir.join("src/apply.rs")).unwrap());
    sources.push(std::fs::read_to_string(dir.join("src/review.rs")).unwrap());
    sources.push(std::fs::read_to_string(dir.join("src/fleet.rs")).unwrap());
    sources.push(std::fs::read_to_string(dir.join("src/pages/wallet.rs")).unwrap());
    for source in &sources {
        for piece in source.split("t.get(\"").skip(1) {
            used.insert(piece.split('"').next().unwrap().to_owned());
        }
    }
    for role in store::accounts::Role::ALL {
        used.insert(format!("role-{}", role.as_str()));
    }
    for status in ["approved", "declined", "unanswered"] {
        used.insert(format!("status-{status}"));
    }
    used.insert("product-debit".into());
    used.insert("product-credit".into());
    let missing: Vec<_> = used.difference(&ids[0]).collect();
    assert!(missing.is_empty(), "used but not translated: {missing:?}");
}

#[test]
fn the_vendored_htmx_is_the_recorded_one() {
    use sha2::Digest;
    let digest: String = sha2::Sha256::digest(console::HTMX_JS)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let record = include_str!("../static/VENDORED.md");
    assert!(
        record.contains(&digest),
        "static/htmx.min.js changed: record its version and digest in static/VENDORED.md"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_needs_the_csrf_token_and_rotates_the_session() {
    let world = world().await;
    let form = world.get("/console/login", None, &[]).await;
    assert_eq!(form.status, StatusCode::OK);
    let cookie = form.set_cookie().unwrap();
    for flag in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie} lacks {flag}");
    }
    let csp = form.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert_eq!(form.headers["x-frame-options"], "DENY");
    assert!(
        !form.html.contains("http://") && !form.html.contains("https://"),
        "nothing from elsewhere"
    );

    let before = form.session();
    let password = demo::DEMO_PASSWORD;
    let forged = world
        .post(
            "/console/login",
            Some(&before),
            &format!(
                "username=shanghai.manager&password={password}&csrf={}",
                "0".repeat(64)
            ),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let no_session = world
        .post(
            "/console/login",
            None,
            &format!(
                "username=shanghai.manager&password={password}&csrf={}",
                form.csrf()
            ),
        )
        .await;
    assert_eq!(no_session.status, StatusCode::FORBIDDEN);

    let wrong = world
        .post(
            "/console/login",
            Some(&before),
            &format!(
                "username=shanghai.manager&password=wrong-password-1&csrf={}",
                form.csrf()
            ),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.html.contains("Wrong user name or password"));

    let signed_in = world
        .post(
            "/console/login",
            Some(&before),
            &format!(
                "username=shanghai.manager&password={password}&csrf={}",
                form.csrf()
            ),
        )
        .await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    assert_eq!(signed_in.location(), "/console/dashboard");
    let after = signed_in.session();
    assert_ne!(before, after, "the session id changes at sign-in");
    assert_eq!(
        world
            .get("/console/dashboard", Some(&before), &[])
            .await
            .location(),
        "/console/login"
    );
    let dashboard = world.get("/console/dashboard", Some(&after), &[]).await;
    assert_eq!(dashboard.status, StatusCode::OK);
    assert!(dashboard.html.contains("Sun Li"));

    // Sign-out is a form too: without the token it is refused.
    let refused = world
        .post("/console/logout", Some(&after), "csrf=forged")
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let out = world
        .post(
            "/console/logout",
            Some(&after),
            &format!("csrf={}", dashboard.csrf()),
        )
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(
        world
            .get("/console/dashboard", Some(&after), &[])
            .await
            .location(),
        "/console/login"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_end_after_fifteen_idle_minutes() {
    let world = world().await;
    let session = world.sign_in("cardholder1").await;
    world.clock.advance(14 * 60 * 1_000_000_000);
    assert_eq!(
        world
            .get("/console/cards", Some(&session), &[])
            .await
            .status,
        StatusCode::OK
    );
    world.clock.advance(16 * 60 * 1_000_000_000);
    let expired = world.get("/console/cards", Some(&session), &[]).await;
    assert_eq!(expired.location(), "/console/login?expired=1");
    let login = world.get(&expired.location(), None, &[]).await;
    assert!(login.html.contains("15 minutes"), "{}", login.html);
}

/// Each role's portal: (user, pages that open, pages refused with 403).
const PORTALS: [(&str, &[&str], &[&str]); 7] = [
    (
        "shanghai.admin",
        &[
            "/console/dashboard",
            "/console/transactions",
            "/console/terminals",
            "/console/staff",
            "/console/api-keys",
            "/console/refunds",
            "/console/settlement",
        ],
        &["/console/cards", "/console/journal", "/console/health"],
    ),
    (
        "shanghai.manager",
        &[
            "/console/dashboard",
            "/console/transactions",
            "/console/terminals",
            "/console/staff",
            "/console/refunds",
            "/console/settlement",
        ],
        &["/console/cards", "/console/journal", "/console/api-keys"],
    ),
    (
        "shanghai.cashier",
        &[
            "/console/dashboard",
            "/console/transactions",
            "/console/terminals",
            "/console/refunds",
        ],
        &[
            "/console/staff",
            "/console/cards",
            "/console/journal",
            "/console/api-keys",
            "/wallet",
            "/console/settlement",
        ],
    ),
    (
        "cardholder1",
        &["/console/cards", "/console/transactions"],
        &[
            "/console/dashboard",
            "/console/terminals",
            "/console/staff",
            "/console/merchants",
            "/console/journal",
            "/console/api-keys",
            "/console/settlement",
        ],
    ),
    (
        "operator",
        &[
            "/console/merchants",
            "/console/terminals",
            "/console/transactions",
            "/console/journal",
            "/console/health",
            "/console/settlement",
            "/console/api-keys",
        ],
        &["/console/cards", "/console/staff", "/wallet"],
    ),
    (
        "bank",
        &[
            "/console/cards",
            "/console/transactions",
            "/console/api-keys",
        ],
        &[
            "/console/merchants",
            "/console/journal",
            "/console/settlement",
        ],
    ),
    (
        "partner",
        &[
            "/console/merchants",
            "/console/terminals",
            "/console/transactions",
        ],
        &[
            "/console/cards",
            "/console/journal",
            "/console/staff",
            "/console/health",
        ],
    ),
];

#[tokio::test(flavor = "multi_thread")]
async fn every_role_walks_its_portal_and_nothing_else() {
    let world = world().await;
    let pans: Vec<String> = demo::cards().into_iter().map(|card| card.pan).collect();
    for (user, open, refused) in PORTALS {
        let session = world.sign_in(user).await;
        let home = world.get("/console", Some(&session), &[]).await;
        assert_eq!(
            home.location(),
            open[0],
            "{user} lands on the first page of the portal"
        );
        for path in open {
            for lang in ["en", "zh-CN"] {
                let page = world
                    .get(
                        path,
                        Some(&session),
                        &[("cookie", &format!("ep_lang={lang}"))],
                    )
                    .await;
                assert_eq!(page.status, StatusCode::OK, "{user} {path}: {}", page.html);
                assert!(
                    page.html.contains(&format!("<html lang=\"{lang}\">")),
                    "{user} {path} {lang}"
                );
                for pan in &pans {
                    assert!(
                        !page.html.contains(pan.as_str()),
                        "{user} {path} shows a full card number"
                    );
                }
            }
        }
        for path in refused {
            let page = world.get(path, Some(&session), &[]).await;
            assert_eq!(page.status, StatusCode::FORBIDDEN, "{user} {path}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_show_the_tenant_and_only_the_tenant() {
    let world = world().await;
    let shanghai = world.sign_in("shanghai.admin").await;
    let list = world
        .get("/console/transactions", Some(&shanghai), &[])
        .await;
    assert!(
        list.html.contains("RRNSHANGHAI1") || list.html.contains(&world.shanghai_sale.to_string())
    );
    assert!(list.html.contains(&masked("card-CH001-D")));
    assert!(
        !list.html.contains(demo::BEIJING_MERCHANT) && !list.html.contains(&masked("card-CH002-C"))
    );
    let own = world
        .get(
            &format!("/console/transactions/{}", world.shanghai_sale),
            Some(&shanghai),
            &[],
        )
        .await;
    assert_eq!(own.status, StatusCode::OK);
    assert!(own.html.contains("RRNSHANGHAI1") && own.html.contains("Lujiazui Coffee"));
    // The detail explains the risk rules that fired, one per line.
    assert!(own.html.contains(
        "<dd id=\"risk-rules\"><span class=\"mono\">terminal-velocity(alert,10): 31 authorizations on the terminal in 600 s (at most 30)</span><br><span class=\"mono\">outside-hours(alert,5)"
    ), "{}", own.html);
    let other = world
        .get(
            &format!("/console/transactions/{}", world.beijing_sale),
            Some(&shanghai),
            &[],
        )
        .await;
    assert_eq!(
        other.status,
        StatusCode::NOT_FOUND,
        "another merchant's transaction by URL"
    );
    assert!(!other.html.contains("RRNBEIJING01"));

    let dashboard = world.get("/console/dashboard", Some(&shanghai), &[]).await;
    assert!(
        dashboard.html.contains("CNY 12.50"),
        "today's approved sales"
    );
    assert!(dashboard.html.contains("<svg"), "the week's chart");

    // Search through htmx: the answer is the results fragment only.
    let fragment = world
        .get(
            "/console/transactions?status=declined&from=&card=",
            Some(&shanghai),
            &[("hx-request", "true")],
        )
        .await;
    assert!(
        !fragment.html.contains("<html") && fragment.html.contains("id=\"results\""),
        "{}",
        fragment.html
    );
    assert!(!fragment.html.contains("RRNSHANGHAI1"));
    let bad = world
        .get("/console/transactions?card=123", Some(&shanghai), &[])
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.html.contains("masked card number"));

    let holder = world.sign_in("cardholder1").await;
    let cards = world.get("/console/cards", Some(&holder), &[]).await;
    assert!(cards.html.contains(&masked("card-CH001-D")) && cards.html.contains("CNY 5000.00"));
    assert!(!cards.html.contains(&masked("card-CH002-D")));
    let own_list = world.get("/console/transactions", Some(&holder), &[]).await;
    assert!(
        own_list.html.contains("Lujiazui Coffee, Shanghai"),
        "a cardholder sees where they paid"
    );
    let theirs = world
        .get(
            &format!("/console/transactions/{}", world.beijing_sale),
            Some(&holder),
            &[],
        )
        .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);

    let operator = world.sign_in("operator").await;
    let journal = world.get("/console/journal", Some(&operator), &[]).await;
    assert!(journal.html.contains("RRN") || journal.html.contains(&masked("card-CH002-C")));
    let chinese = world
        .get(
            "/console/merchants",
            Some(&operator),
            &[("accept-language", "zh-CN,zh;q=0.9,en;q=0.8")],
        )
        .await;
    assert!(
        chinese.html.contains("陆家嘴咖啡") && chinese.html.contains("商户"),
        "the browser's language by default"
    );
    let switched = world
        .get(
            "/console/lang/en",
            Some(&operator),
            &[("referer", "http://127.0.0.1:8080/console/journal?x=1")],
        )
        .await;
    assert_eq!(
        switched.location(),
        "/console/journal?x=1",
        "back where the link was"
    );
    let elsewhere = world
        .get(
            "/console/lang/en",
            Some(&operator),
            &[("referer", "http://127.0.0.1:8080//evil.example/console")],
        )
        .await;
    assert_eq!(elsewhere.location(), "/console");
    assert!(
        switched.headers["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("ep_lang=en")
    );
    let _ = &world.store;
}

#[tokio::test(flavor = "multi_thread")]
async fn static_files_come_from_the_binary() {
    let world = world().await;
    let script = world.get("/console/static/htmx.min.js", None, &[]).await;
    assert_eq!(script.status, StatusCode::OK);
    assert!(
        script.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert_eq!(script.html.len(), console::HTMX_JS.len());
    let missing = world.get("/console/nothing", None, &[]).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        world.get("/console/dashboard", None, &[]).await.location(),
        "/console/login"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_merchant_admin_adds_staff_through_a_csrf_protected_form() {
    let world = world().await;
    let admin = world.sign_in("shanghai.admin").await;
    let page = world.get("/console/staff", Some(&admin), &[]).await;
    assert!(
        page.html.contains("action=\"/console/staff\""),
        "the admin sees the form"
    );
    let csrf = page.csrf();
    let form = |token: &str, username: &str, password: &str| {
        format!(
            "csrf={token}&username={username}&display_name=Li+Na&role=cashier&password={password}"
        )
    };
    let forged = world
        .post(
            "/console/staff",
            Some(&admin),
            &form("forged", "li.na", "a-long-password-1"),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let short = world
        .post(
            "/console/staff",
            Some(&admin),
            &form(&csrf, "li.na", "short"),
        )
        .await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST);
    assert!(short.html.contains("at least 12"), "{}", short.html);
    let created = world
        .post(
            "/console/staff",
            Some(&admin),
            &form(&csrf, "li.na", "a-long-password-1"),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.html);
    assert!(created.html.contains("li.na"));
    let again = world
        .post(
            "/console/staff",
            Some(&admin),
            &form(&csrf, "li.na", "a-long-password-1"),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let user = world
        .store
        .user_by_username("li.na")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.role, store::accounts::Role::Cashier);
    assert_eq!(
        user.tenant,
        store::accounts::Tenant::Merchant(demo::SHANGHAI_MERCHANT.into())
    );

    // A manager sees the staff but may not add any.
    let manager = world.sign_in("shanghai.manager").await;
    let page = world.get("/console/staff", Some(&manager), &[]).await;
    assert!(!page.html.contains("action=\"/console/staff\""));
    let refused = world
        .post(
            "/console/staff",
            Some(&manager),
            &form(&page.csrf(), "li.ping", "a-long-password-1"),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    // The sign-ins and the new cashier are in the audit log, in order and chained; the forged
    // and refused posts are not.
    let entries = world
        .store
        .audit_entries(store::audit::AuditQuery::page(0, 100))
        .await
        .unwrap();
    let actions: Vec<_> = entries
        .iter()
        .map(|e| (e.actor.as_str(), e.action.as_str(), e.target.as_str()))
        .collect();
    assert!(actions.contains(&("shanghai.admin", "login.password", "console")));
    assert!(actions.contains(&("shanghai.admin", "login.totp", "console")));
    let tail = &actions[actions.len() - 2..];
    assert_eq!(
        tail,
        [
            ("shanghai.admin", "staff.create", "user:li.na"),
            ("shanghai.manager", "login.password", "console"),
        ]
    );
    assert_eq!(entries[entries.len() - 2].detail, "cashier");
    assert_eq!(
        entries[entries.len() - 2].tenant,
        format!("merchant:{}", demo::SHANGHAI_MERCHANT)
    );
    let verified = world.store.verify_audit().await.unwrap();
    assert_eq!(verified.first_break, None);

    // The password the admin gave is a temporary one: li.na must choose her own at her first
    // sign-in, before any other page; her password does not open the API meanwhile.
    // HTTP Basic of `li.na:<password>` (base64, computed once: the console has no base64).
    let basic = |password: &str| match password {
        "a-long-password-1" => "Basic bGkubmE6YS1sb25nLXBhc3N3b3JkLTE=",
        "li-na-own-passphrase" => "Basic bGkubmE6bGktbmEtb3duLXBhc3NwaHJhc2U=",
        _ => unreachable!(),
    };
    let api_me = async |password: &str| {
        api::router(api::ApiState::new(world.store.clone()))
            .oneshot(
                Request::get("/api/v1/me")
                    .header("authorization", basic(password))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap()
    };
    let refused = api_me("a-long-password-1").await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let text = String::from_utf8(
        refused
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert!(
        text.contains("password-reset-required") && text.contains("temporary"),
        "{text}"
    );
    let form = world.get("/console/login", None, &[]).await;
    let login = |password: &str| format!("username=li.na&password={password}&csrf={}", form.csrf());
    let signed_in = world
        .post(
            "/console/login",
            Some(&form.session()),
            &login("a-long-password-1"),
        )
        .await;
    assert_eq!(signed_in.location(), "/console/password");
    let li_na = signed_in.session();
    assert_eq!(
        world
            .get("/console/dashboard", Some(&li_na), &[])
            .await
            .location(),
        "/console/password",
        "nothing else before the change"
    );
    let page = world.get("/console/password", Some(&li_na), &[]).await;
    assert!(page.html.contains("first sign-in"), "{}", page.html);
    let change =
        |password: &str| format!("csrf={}&password={password}&again={password}", page.csrf());
    let same = world
        .post(
            "/console/password",
            Some(&li_na),
            &change("a-long-password-1"),
        )
        .await;
    assert_eq!(
        same.status,
        StatusCode::BAD_REQUEST,
        "not the temporary one"
    );
    let changed = world
        .post(
            "/console/password",
            Some(&li_na),
            &change("li-na-own-passphrase"),
        )
        .await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.html);
    assert_eq!(changed.location(), "/console/dashboard");
    assert_eq!(
        world
            .get("/console/dashboard", Some(&li_na), &[])
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        api_me("li-na-own-passphrase").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        api_me("a-long-password-1").await.status(),
        StatusCode::UNAUTHORIZED,
        "the temporary password is gone"
    );
    let last = world
        .store
        .audit_entries(store::audit::AuditQuery {
            action_prefix: Some("user.password_change".into()),
            ..store::audit::AuditQuery::page(0, 100)
        })
        .await
        .unwrap();
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].actor, "li.na");
}

#[tokio::test(flavor = "multi_thread")]
async fn api_keys_are_created_shown_once_and_revoked_in_the_console() {
    let world = world().await;
    let operator = world.sign_in("operator").await;
    let page = world.get("/console/api-keys", Some(&operator), &[]).await;
    let created = world
        .post(
            "/console/api-keys",
            Some(&operator),
            &format!("csrf={}&name=reports", page.csrf()),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let start = created.html.find("ek_").unwrap();
    let secret: String = created.html[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    assert_eq!(secret.len(), 3 + 12 + 1 + 64, "{secret}");
    assert!(world.store.api_key_user(&secret).await.unwrap().is_some());
    let listed = world.get("/console/api-keys", Some(&operator), &[]).await;
    assert!(!listed.html.contains(&secret), "the secret is shown once");
    let id = &secret[..15];
    let revoked = world
        .post(
            &format!("/console/api-keys/{id}/revoke"),
            Some(&operator),
            &format!("csrf={}", listed.csrf()),
        )
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    assert!(world.store.api_key_user(&secret).await.unwrap().is_none());
    let forged = world
        .post(
            &format!("/console/api-keys/{id}/revoke"),
            Some(&operator),
            "csrf=forged",
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let keys = world
        .store
        .audit_entries(store::audit::AuditQuery {
            action_prefix: Some("api_key.".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let keys: Vec<_> = keys
        .iter()
        .map(|e| (e.action.as_str(), e.target.clone(), e.detail.as_str()))
        .collect();
    assert_eq!(
        keys,
        vec![
            ("api_key.create", format!("api_key:{id}"), "reports"),
            ("api_key.revoke", format!("api_key:{id}"), ""),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_login_and_a_logout_are_audited() {
    let world = world().await;
    let page = world.get("/console/login", None, &[]).await;
    let session = page.session();
    let refused = world
        .post(
            "/console/login",
            Some(&session),
            &format!(
                "csrf={}&username=shanghai.cashier&password=wrong-password",
                page.csrf()
            ),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let cashier = world.sign_in("shanghai.cashier").await;
    let dashboard = world.get("/console/dashboard", Some(&cashier), &[]).await;
    let out = world
        .post(
            "/console/logout",
            Some(&cashier),
            &format!("csrf={}", dashboard.csrf()),
        )
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let entries = world
        .store
        .audit_entries(store::audit::AuditQuery::page(0, 100))
        .await
        .unwrap();
    let seen: Vec<_> = entries
        .iter()
        .map(|e| (e.actor.as_str(), e.action.as_str(), e.tenant.as_str()))
        .collect();
    let tenant = format!("merchant:{}", demo::SHANGHAI_MERCHANT);
    assert_eq!(
        seen,
        vec![
            ("shanghai.cashier", "login.refused", tenant.as_str()),
            ("shanghai.cashier", "login.password", tenant.as_str()),
            ("shanghai.cashier", "logout", tenant.as_str()),
        ]
    );
    assert!(
        entries.iter().all(|e| !e.detail.contains("wrong-password")),
        "no password in the log"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn operators_see_the_health_of_the_store_and_the_host() {
    let world = world().await;
    let probe: console::HealthProbe =
        Arc::new(|| vec![("connections_open".to_owned(), "3".to_owned())]);
    let api_state = api::ApiState {
        webhooks: None,
        freezes: Default::default(),
        store: world.store.clone(),
        clock: world.clock.clone(),
        receipts: None,
        refunds: None,
        disputes: None,
        anchors: None,
        alert_senders: Default::default(),
        documents_dir: None,
        incident_targets: api::incidents::ResponseTargets::default(),
        hsm: None,
    };
    let world = World {
        router: console::router(
            console::Console::new(api_state, world.mfa.clone()).with_health(probe),
        ),
        ..world
    };
    let operator = world.sign_in("operator").await;
    let page = world.get("/console/health", Some(&operator), &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("sqlite") && page.html.contains("connections_open"));
    assert!(
        page.html
            .contains(&store::latest_version(store::sqlite_migrations()).to_string())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn operators_and_merchant_admins_enrol_and_use_a_second_factor() {
    let world = world().await;
    let password = demo::DEMO_PASSWORD;
    let pending = password_step(&world, "beijing.admin").await;
    assert_eq!(
        world
            .get("/console/dashboard", Some(&pending), &[])
            .await
            .location(),
        "/console/login",
        "a session waiting for its code opens nothing"
    );
    let enrol = world.get("/console/mfa", Some(&pending), &[]).await;
    assert!(enrol.html.contains("<svg") && enrol.html.contains("id=\"totp-secret\""));
    let user = world
        .store
        .user_by_username("beijing.admin")
        .await
        .unwrap()
        .unwrap();
    let secret = world
        .mfa
        .secret(&user.id, user.totp_nonce.as_deref().unwrap())
        .unwrap();
    assert!(
        enrol.html.contains(&console::mfa::base32(&secret)),
        "the key, shown at enrolment"
    );
    assert!(!user.totp_enabled);

    let wrong = world
        .post(
            "/console/mfa",
            Some(&pending),
            &format!("code=000000&csrf={}", enrol.csrf()),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        world
            .store
            .user(&user.id)
            .await
            .unwrap()
            .unwrap()
            .failed_logins,
        1
    );
    let forged = world
        .post(
            "/console/mfa",
            Some(&pending),
            &format!("code={}&csrf=forged", world.code("beijing.admin").await),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let code = world.code("beijing.admin").await;
    let done = world
        .post(
            "/console/mfa",
            Some(&pending),
            &format!("code={code}&csrf={}", enrol.csrf()),
        )
        .await;
    assert_eq!(done.location(), "/console/dashboard");
    assert_ne!(
        done.session(),
        pending,
        "the session id changes again once the code is right"
    );
    assert!(
        world
            .store
            .user(&user.id)
            .await
            .unwrap()
            .unwrap()
            .totp_enabled
    );

    // Next sign-in: no QR code any more, and the code just used is refused (same step).
    let again = password_step(&world, "beijing.admin").await;
    let prompt = world.get("/console/mfa", Some(&again), &[]).await;
    assert!(!prompt.html.contains("<svg") && !prompt.html.contains(&console::mfa::base32(&secret)));
    let replay = world
        .post(
            "/console/mfa",
            Some(&again),
            &format!("code={code}&csrf={}", prompt.csrf()),
        )
        .await;
    assert_eq!(
        replay.status,
        StatusCode::UNAUTHORIZED,
        "a code is good once"
    );
    world.clock.advance(30 * 1_000_000_000);
    let next = world
        .post(
            "/console/mfa",
            Some(&again),
            &format!(
                "code={}&csrf={}",
                world.code("beijing.admin").await,
                prompt.csrf()
            ),
        )
        .await;
    assert_eq!(next.status, StatusCode::SEE_OTHER);

    // A cashier needs no second factor.
    let form = world.get("/console/login", None, &[]).await;
    let cashier = world
        .post(
            "/console/login",
            Some(&form.session()),
            &format!(
                "username=shanghai.cashier&password={password}&csrf={}",
                form.csrf()
            ),
        )
        .await;
    assert_eq!(cashier.location(), "/console/dashboard");
}

/// The password step of a sign-in that needs a second factor: the pending session.
async fn password_step(world: &World, username: &str) -> String {
    let form = world.get("/console/login", None, &[]).await;
    let answer = world
        .post(
            "/console/login",
            Some(&form.session()),
            &format!(
                "username={username}&password={}&csrf={}",
                demo::DEMO_PASSWORD,
                form.csrf()
            ),
        )
        .await;
    assert_eq!(
        answer.location(),
        "/console/mfa",
        "the password alone is not enough"
    );
    answer.session()
}

#[tokio::test(flavor = "multi_thread")]
async fn anyone_verifies_a_receipt_on_the_verify_page_and_an_altered_one_is_refused() {
    let world = world().await;
    let payload = world
        .receipts
        .sign(aftersale::receipt::Statement {
            rrn: "RRNSHANGHAI1".into(),
            terminal_id: "10000001".into(),
            merchant_id: demo::SHANGHAI_MERCHANT.into(),
            card: masked("card-CH001-D"),
            amount_minor: 1_250,
            currency: "CNY".into(),
            time: NOW_SECONDS as i64,
            auth_code: "654321".into(),
            key_id: String::new(),
        })
        .unwrap();
    let query = |payload: &str| {
        let encoded: String = payload
            .bytes()
            .map(|byte| match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => (byte as char).to_string(),
                _ => format!("%{byte:02X}"),
            })
            .collect();
        format!("/verify?receipt={encoded}")
    };

    let empty = world.get("/verify", None, &[]).await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(empty.html.contains("name=\"receipt\""), "{}", empty.html);
    assert!(!empty.html.contains("data-verdict"));

    let genuine = world.get(&query(&payload), None, &[]).await;
    assert_eq!(genuine.status, StatusCode::OK, "{}", genuine.html);
    assert!(
        genuine.html.contains("data-verdict=\"genuine\""),
        "{}",
        genuine.html
    );
    assert!(genuine.html.contains("CNY 12.50"));
    // 1 764 000 000 is 2025-11-24 16:00:00 UTC: midnight in Shanghai.
    assert!(
        genuine.html.contains("2025-11-25 00:00:00"),
        "{}",
        genuine.html
    );
    assert!(genuine.html.contains("RRNSHANGHAI1"));

    let altered = world
        .get(
            &query(&payload.replacen("|1250|", "|125000|", 1)),
            None,
            &[],
        )
        .await;
    assert_eq!(altered.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        altered.html.contains("data-verdict=\"rejected\""),
        "{}",
        altered.html
    );
    assert!(
        altered.html.contains("altered or forged"),
        "{}",
        altered.html
    );
    assert!(!altered.html.contains("CNY 1250.00"));

    let chinese = world
        .get(
            &query("EPR1|nonsense"),
            None,
            &[("accept-language", "zh-CN")],
        )
        .await;
    assert_eq!(chinese.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(chinese.html.contains("凭证不真实"), "{}", chinese.html);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cardholder_sees_what_happened_to_their_transaction() {
    let world = world().await;
    let session = world.sign_in("cardholder1").await;
    let page = world
        .get(
            &format!("/console/transactions/{}", world.shanghai_sale),
            Some(&session),
            &[],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    let timeline = page.html.split("<ol class=\"timeline\">").nth(1).unwrap();
    let timeline = timeline.split("</ol>").next().unwrap();
    assert!(timeline.contains("Authorized"), "{timeline}");
    assert!(timeline.contains("CNY 12.50"), "{timeline}");
    assert_eq!(timeline.matches("<li>").count(), 1, "{timeline}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cardholder_downloads_a_monthly_statement_of_their_cards_only() {
    let world = world().await;
    let session = world.sign_in("cardholder1").await;
    let page = world
        .get("/console/transactions", Some(&session), &[])
        .await;
    assert!(
        page.html.contains("action=\"/console/statement\""),
        "{}",
        page.html
    );
    // NOW_SECONDS is 2025-11-25 00:00 in Shanghai; the sales are a minute and half a minute
    // before it, on 24 November.
    let csv = world
        .get("/console/statement?month=2025-11", Some(&session), &[])
        .await;
    assert_eq!(csv.status, StatusCode::OK, "{}", csv.html);
    let lines: Vec<&str> = csv.html.lines().collect();
    assert_eq!(lines.len(), 2, "{}", csv.html);
    assert!(lines[1].contains("RRNSHANGHAI1"), "{}", lines[1]);
    assert!(!csv.html.contains("RRNBEIJING01"));
    let signed_out = world
        .get("/console/statement?month=2025-11", None, &[])
        .await;
    assert_eq!(signed_out.status, StatusCode::SEE_OTHER);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cardholder_reports_fraud_from_the_transaction_page_and_downloads_the_pack() {
    let world = world().await;
    let session = world.sign_in("cardholder1").await;
    let path = format!("/console/transactions/{}", world.shanghai_sale);
    let page = world.get(&path, Some(&session), &[]).await;
    assert!(page.html.contains("recognise this charge"), "{}", page.html);
    let csrf = page.csrf();

    // Without the CSRF token nothing happens.
    let forged = world
        .post(
            &format!("{path}/fraud-report"),
            Some(&session),
            "csrf=wrong&description=x",
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(world.store.freezes().await.unwrap().is_empty());

    let reported = world
        .post(
            &format!("{path}/fraud-report"),
            Some(&session),
            &format!("csrf={csrf}&description=Not+me"),
        )
        .await;
    assert_eq!(reported.status, StatusCode::SEE_OTHER, "{}", reported.html);
    let report_path = reported.location();
    assert!(
        report_path.starts_with("/console/fraud-reports/fr_"),
        "{report_path}"
    );
    assert_eq!(
        world.store.freezes().await.unwrap()[0].target,
        "card-CH001-D"
    );
    let report = world.get(&report_path, Some(&session), &[]).await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.html);
    assert!(report.html.contains("transaction.json"));
    let pack = world
        .get(&format!("{report_path}/pack.json"), Some(&session), &[])
        .await;
    assert_eq!(pack.status, StatusCode::OK);
    aftersale::evidence::check(&pack.html).unwrap();
    // The page says what follows, and offers the PDF and the manifest.
    assert!(report.html.contains("evidence.pdf"));
    assert!(report.html.contains("A case opens"), "{}", report.html);
    // … and how far each step is: all done at once here.
    for step in ["case", "notify"] {
        assert!(
            report
                .html
                .contains(&format!("data-step=\"{step}\" data-state=\"done\"")),
            "{step}: {}",
            report.html
        );
    }
    assert!(report.html.contains("Done"), "{}", report.html);
    let pdf = world
        .get(&format!("{report_path}/evidence.pdf"), Some(&session), &[])
        .await;
    assert_eq!(pdf.status, StatusCode::OK);
    assert!(pdf.html.starts_with("%PDF-1.4"));
    let sums = world
        .get(&format!("{report_path}/SHA256SUMS"), Some(&session), &[])
        .await;
    assert_eq!(sums.status, StatusCode::OK);
    let report_id = report_path.trim_start_matches("/console/fraud-reports/");
    assert!(
        sums.html
            .lines()
            .last()
            .is_some_and(|line| line.ends_with(&format!("  evidence-{report_id}.json"))),
        "{}",
        sums.html
    );
    assert!(sums.html.contains("  evidence.pdf\n"), "{}", sums.html);

    // Another cardholder does not see it.
    let other = world.sign_in("cardholder2").await;
    let hidden = world.get(&report_path, Some(&other), &[]).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    let hidden = world
        .get(&format!("{report_path}/evidence.pdf"), Some(&other), &[])
        .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cardholder_freezes_their_card_in_one_click_and_sets_its_alerts() {
    let world = world().await;
    let session = world.sign_in("cardholder1").await;
    let cards = world.get("/console/cards", Some(&session), &[]).await;
    assert!(
        cards.html.contains("href=\"/console/cards/card-CH001-D\""),
        "{}",
        cards.html
    );
    let path = "/console/cards/card-CH001-D";
    let page = world.get(path, Some(&session), &[]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.html.contains("id=\"freeze\""), "{}", page.html);
    let csrf = page.csrf();

    // Without the CSRF token nothing happens.
    let forged = world
        .post(
            &format!("{path}/freeze"),
            Some(&session),
            "csrf=wrong&action=freeze",
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(world.store.freezes().await.unwrap().is_empty());

    let frozen = world
        .post(
            &format!("{path}/freeze"),
            Some(&session),
            &format!("csrf={csrf}&action=freeze"),
        )
        .await;
    assert_eq!(frozen.status, StatusCode::SEE_OTHER, "{}", frozen.html);
    assert_eq!(
        world.store.freezes().await.unwrap()[0].target,
        "card-CH001-D"
    );
    let page = world.get(path, Some(&session), &[]).await;
    assert!(page.html.contains("id=\"unfreeze\""), "{}", page.html);
    let thawed = world
        .post(
            &format!("{path}/freeze"),
            Some(&session),
            &format!("csrf={csrf}&action=unfreeze"),
        )
        .await;
    assert_eq!(thawed.status, StatusCode::SEE_OTHER, "{}", thawed.html);
    assert!(world.store.freezes().await.unwrap().is_empty());

    // Alerts: a bad phone number is refused with the reason, a good one saved.
    let refused = world
        .post(
            &format!("{path}/alerts"),
            Some(&session),
            &format!("csrf={csrf}&sms=on&phone=12&min_amount=0"),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused.html.contains("not a phone number"),
        "{}",
        refused.html
    );
    let saved = world
        .post(
            &format!("{path}/alerts"),
            Some(&session),
            &format!("csrf={csrf}&sms=on&phone=%2B8613800001234&min_amount=50.00&declines_only=on"),
        )
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.html);
    let stored = world
        .store
        .alert_preferences("card-CH001-D")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.channels, ["sms"]);
    assert_eq!(
        (stored.min_amount_minor, stored.declines_only),
        (5_000, true)
    );
    assert_eq!(stored.phone.as_deref(), Some("+8613800001234"));

    // Another cardholder's card is not found.
    let other = world.sign_in("cardholder2").await;
    let hidden = world.get(path, Some(&other), &[]).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
}

/// A `multipart/form-data` body of text fields and files, and its content type.
fn multipart(fields: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "easypos-test-boundary-7d3f";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        // `file` is a file named receipt.png; `file:NAME` a file named NAME.
        let filename = match *name {
            "file" => Some("receipt.png"),
            other => other.strip_prefix("file:"),
        };
        if let Some(filename) = filename {
            body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
            );
        } else {
            body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            );
        }
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_issuer_charges_back_and_the_merchant_answers_with_the_certificate_and_a_file() {
    let world = world().await;
    let id = world
        .store
        .put_dispute(store::disputes::Dispute {
            id: "dp_00000000000000c1".into(),
            transaction_id: world.shanghai_sale,
            merchant_id: demo::SHANGHAI_MERCHANT.into(),
            card_id: "card-CH001-D".into(),
            amount_minor: 1_250,
            currency: 156,
            reason: "not_received".into(),
            description: "the noodles never came".into(),
            status: "opened".into(),
            opened_by: "cardholder1".into(),
            opened_at: NOW_SECONDS as i64 - 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    let path = format!("/console/disputes/{id}");

    // The issuer's operator finds it and charges it back.
    let bank = world.sign_in("bank").await;
    let list = world.get("/console/disputes", Some(&bank), &[]).await;
    assert!(list.html.contains(&id), "{}", list.html);
    let page = world.get(&path, Some(&bank), &[]).await;
    assert!(page.html.contains("form class=\"review\""), "{}", page.html);
    let reviewed = world
        .post(
            &format!("{path}/review"),
            Some(&bank),
            &format!("csrf={}&decision=chargeback&note=", page.csrf()),
        )
        .await;
    assert_eq!(reviewed.status, StatusCode::SEE_OTHER, "{}", reviewed.html);

    // The merchant's administrator answers: a text file is refused and nothing changes …
    let admin = world.sign_in("shanghai.admin").await;
    let page = world.get(&path, Some(&admin), &[]).await;
    assert!(page.html.contains("form class=\"answer\""), "{}", page.html);
    let csrf = page.csrf();
    let send = |fields: Vec<(&'static str, Vec<u8>)>| {
        let fields: Vec<(&str, &[u8])> = fields.iter().map(|(n, v)| (*n, v.as_slice())).collect();
        let (content_type, body) = multipart(&fields);
        Request::post(format!("{path}/answer"))
            .header("content-type", content_type)
            .header("cookie", format!("ep_session={admin}"))
            .body(Body::from(body))
            .unwrap()
    };
    let refused = world
        .send(send(vec![
            ("csrf", csrf.clone().into_bytes()),
            ("evidence", b"delivered at 12:05".to_vec()),
            ("certificate", b"on".to_vec()),
            ("file", b"just text".to_vec()),
        ]))
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.html);
    assert!(
        refused
            .html
            .contains("&#34;receipt.png&#34;: not a PDF, PNG or JPEG file"),
        "{}",
        refused.html
    );
    let stored = world.store.dispute(&id).await.unwrap().unwrap();
    assert_eq!(stored.status, "charged_back");
    assert!(world.store.dispute_documents(&id).await.unwrap().is_empty());

    // … then the certificate and a photo of the delivery note are attached.
    let png = b"\x89PNG\r\n\x1a\nnot really an image".to_vec();
    let answered = world
        .send(send(vec![
            ("csrf", csrf.into_bytes()),
            ("evidence", b"delivered at 12:05, signed for".to_vec()),
            ("certificate", b"on".to_vec()),
            ("file", png.clone()),
        ]))
        .await;
    assert_eq!(answered.status, StatusCode::SEE_OTHER, "{}", answered.html);
    let stored = world.store.dispute(&id).await.unwrap().unwrap();
    assert_eq!(stored.status, "answered");
    let documents = world.store.dispute_documents(&id).await.unwrap();
    let names: Vec<&str> = documents.iter().map(|d| d.name.as_str()).collect();
    let certificate_name = format!("certificate-{}.json", world.shanghai_sale);
    assert_eq!(names, [certificate_name.as_str(), "receipt.png"]);
    assert!(
        stored.evidence.contains(&documents[0].sha256),
        "{}",
        stored.evidence
    );

    // Both parties see the files; the certificate is the acquirer's signed JSON.
    let page = world.get(&path, Some(&bank), &[]).await;
    assert!(page.html.contains(&certificate_name), "{}", page.html);
    let certificate = world
        .get(
            &format!("{path}/documents/{certificate_name}"),
            Some(&bank),
            &[],
        )
        .await;
    assert_eq!(certificate.status, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_str(&certificate.html).unwrap();
    assert_eq!(json["format"], "easypos-certificate/1");
    use sha2::Digest;
    assert_eq!(
        sha2::Sha256::digest(certificate.html.as_bytes())
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect::<String>(),
        documents[0].sha256
    );
    // The photo is kept byte for byte in the documents directory.
    assert_eq!(std::fs::read(&documents[1].file).unwrap(), png);
    // Another merchant sees neither the dispute nor its files.
    let beijing = world.sign_in("beijing.admin").await;
    assert_eq!(
        world.get(&path, Some(&beijing), &[]).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        world
            .get(
                &format!("{path}/documents/receipt.png"),
                Some(&beijing),
                &[]
            )
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn evidence_files_keep_their_own_names_and_bad_uploads_are_refused_with_the_reason() {
    let world = world().await;
    let charged_back = |id: &str| store::disputes::Dispute {
        id: id.into(),
        transaction_id: world.shanghai_sale,
        merchant_id: demo::SHANGHAI_MERCHANT.into(),
        card_id: "card-CH001-D".into(),
        amount_minor: 1_250,
        currency: 156,
        reason: "not_received".into(),
        description: "never came".into(),
        status: "charged_back".into(),
        opened_by: "cardholder1".into(),
        opened_at: NOW_SECONDS as i64 - 100,
        answer_due_at: Some(NOW_SECONDS as i64 + 86_400),
        ..Default::default()
    };
    let id = world
        .store
        .put_dispute(charged_back("dp_00000000000000d1"))
        .await
        .unwrap()
        .id;
    let path = format!("/console/disputes/{id}");
    let admin = world.sign_in("shanghai.admin").await;
    let csrf = world.get(&path, Some(&admin), &[]).await.csrf();
    let send = |path: &str, fields: Vec<(&str, Vec<u8>)>| {
        let fields: Vec<(&str, &[u8])> = fields.iter().map(|(n, v)| (*n, v.as_slice())).collect();
        let (content_type, body) = multipart(&fields);
        Request::post(format!("{path}/answer"))
            .header("content-type", content_type)
            .header("cookie", format!("ep_session={admin}"))
            .body(Body::from(body))
            .unwrap()
    };
    let pdf = |extra: usize| {
        let mut bytes = b"%PDF-1.4 delivery note".to_vec();
        bytes.resize(bytes.len() + extra, b' ');
        bytes
    };
    let nothing_attached = |id: &str| {
        let id = id.to_owned();
        let store = world.store.clone();
        async move {
            assert!(store.dispute_documents(&id).await.unwrap().is_empty());
            assert_eq!(
                store.dispute(&id).await.unwrap().unwrap().status,
                "charged_back"
            );
        }
    };

    // A file over 5 MiB: refused, naming the file and the limit.
    let big = world
        .send(send(
            &path,
            vec![
                ("csrf", csrf.clone().into_bytes()),
                ("evidence", b"see the note".to_vec()),
                ("file:note.pdf", pdf(5 * 1024 * 1024)),
            ],
        ))
        .await;
    assert_eq!(big.status, StatusCode::BAD_REQUEST, "{}", big.html);
    assert!(
        big.html
            .contains("&#34;note.pdf&#34;: 5242902 bytes, larger than the 5 MiB"),
        "{}",
        big.html
    );
    nothing_attached(&id).await;
    // Six files: refused.
    let mut six = vec![
        ("csrf", csrf.clone().into_bytes()),
        ("evidence", b"see the notes".to_vec()),
    ];
    six.extend((0..6).map(|_| ("file", pdf(0))));
    let many = world.send(send(&path, six)).await;
    assert_eq!(many.status, StatusCode::BAD_REQUEST, "{}", many.html);
    assert!(
        many.html.contains("at most 5 files per answer"),
        "{}",
        many.html
    );
    nothing_attached(&id).await;
    // More than all the files together may be: the page says so, nothing is read.
    let mut huge = vec![("csrf", csrf.clone().into_bytes())];
    huge.extend((0..6).map(|_| ("file", pdf(5 * 1024 * 1024 - 100))));
    let too_large = world.send(send(&path, huge)).await;
    assert_eq!(too_large.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        too_large.html.contains("The files are too large together"),
        "{}",
        too_large.html
    );
    nothing_attached(&id).await;

    // Files keep their own names, made safe; the same name twice is numbered.
    let answered = world
        .send(send(
            &path,
            vec![
                ("csrf", csrf.clone().into_bytes()),
                ("evidence", b"delivered, signed for".to_vec()),
                ("file:签购单 000123.pdf", pdf(0)),
                ("file:..\\..\\签购单 000123.pdf", pdf(1)),
                ("file:photo.exe", b"\x89PNG\r\n\x1a\nnot really".to_vec()),
            ],
        ))
        .await;
    assert_eq!(answered.status, StatusCode::SEE_OTHER, "{}", answered.html);
    let documents = world.store.dispute_documents(&id).await.unwrap();
    let names: Vec<&str> = documents.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "photo.exe.png",
            "签购单 000123 (2).pdf",
            "签购单 000123.pdf"
        ]
    );
    // Stored under names of their own in the dispute's folder, never the sender's.
    for document in &documents {
        let file = std::path::Path::new(&document.file);
        assert!(file.parent().unwrap().ends_with(format!("disputes/{id}")));
        let stored_name = file.file_name().unwrap().to_str().unwrap();
        assert!(
            stored_name.len() == 36 && stored_name.is_ascii(),
            "{stored_name}"
        );
    }
    // The page links each by its name; the download carries it (UTF-8 for browsers).
    let page = world.get(&path, Some(&admin), &[]).await;
    let href = format!("/console/disputes/{id}/documents/%E7%AD%BE%E8%B4%AD%E5%8D%95%20000123.pdf");
    assert!(page.html.contains(&href), "{}", page.html);
    let download = world.get(&href, Some(&admin), &[]).await;
    assert_eq!(download.status, StatusCode::OK);
    assert_eq!(download.html.as_bytes(), pdf(0).as_slice());
    assert_eq!(
        download.headers["content-disposition"],
        "attachment; filename=\"___ 000123.pdf\"; filename*=UTF-8''%E7%AD%BE%E8%B4%AD%E5%8D%95%20000123.pdf"
    );

    // An answer the dispute refuses (it is answered already) leaves no file behind: its
    // folder still holds the three files of the first answer only.
    let refused = world
        .send(send(
            &path,
            vec![
                ("csrf", csrf.into_bytes()),
                ("evidence", b"once more".to_vec()),
                ("file", b"\x89PNG\r\n\x1a\nx".to_vec()),
            ],
        ))
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.html);
    let folder = std::path::Path::new(&documents[0].file).parent().unwrap();
    assert_eq!(std::fs::read_dir(folder).unwrap().count(), 3);
    assert_eq!(world.store.dispute_documents(&id).await.unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_in_cardholder_opens_the_record_of_a_genuine_receipt() {
    let world = world().await;
    let payload = world
        .receipts
        .sign(aftersale::receipt::Statement {
            rrn: "RRNSHANGHAI1".into(),
            terminal_id: "10000001".into(),
            merchant_id: demo::SHANGHAI_MERCHANT.into(),
            card: masked("card-CH001-D"),
            amount_minor: 1_250,
            currency: "CNY".into(),
            time: NOW_SECONDS as i64 - 59,
            auth_code: "654321".into(),
            key_id: String::new(),
        })
        .unwrap();
    let encoded: String = payload
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => (byte as char).to_string(),
            _ => format!("%{byte:02X}"),
        })
        .collect();
    let path = format!("/verify?receipt={encoded}");
    let link = format!("href=\"/console/transactions/{}\"", world.shanghai_sale);
    let holder = world.sign_in("cardholder1").await;
    let page = world.get(&path, Some(&holder), &[]).await;
    assert!(page.html.contains(&link), "{}", page.html);
    // Anyone else sees the receipt is genuine, and no record of someone else's.
    let anonymous = world.get(&path, None, &[]).await;
    assert!(anonymous.html.contains("data-verdict=\"genuine\""));
    assert!(!anonymous.html.contains("open-record"));
    let other = world.sign_in("cardholder2").await;
    let page = world.get(&path, Some(&other), &[]).await;
    assert!(!page.html.contains("open-record"), "{}", page.html);
}

#[tokio::test]
async fn operators_review_with_maker_checker_and_partners_only_follow_their_own() {
    let world = world().await;
    world
        .store
        .put_users(vec![
            store::accounts::NewUser::new(
                "demo-checker",
                "checker",
                "Second Operator",
                store::accounts::Role::PlatformOperator,
                store::accounts::Tenant::Institution(demo::ACQUIRER),
                demo::DEMO_PASSWORD,
                0,
            )
            .unwrap(),
        ])
        .await
        .unwrap();
    // A department store: medium risk, so it waits for people.
    let form: onboarding::application::Form = serde_json::from_value(serde_json::json!({
        "business_name": "Xujiahui Department Store", "credit_code": "914403001922038216",
        "legal_name": "Zhang Wei", "id_number": "11010519491231002X", "mobile": "13812345678",
        "address": "1 Hongqiao Road", "city": "Shanghai", "mcc": "5311",
        "settlement_card": demo::with_luhn("621700000000000001"), "bank": "Huangpu Commercial Bank",
        "monthly_volume": "500000", "terminal_count": "2", "terminal_kind": "countertop", "consent": "on"
    }))
    .unwrap();
    let draft = world.onboarding.new_draft(&form, None).await.unwrap();
    let (application, provisioned) = world
        .onboarding
        .submit(draft.application, &form)
        .await
        .unwrap();
    assert!(provisioned.is_none());
    let id = application.id;

    let maker = world.sign_in("operator").await;
    let queue = world
        .get("/console/applications?status=submitted", Some(&maker), &[])
        .await;
    assert_eq!(queue.status, StatusCode::OK);
    assert!(
        queue.html.contains(&id) && queue.html.contains("Xujiahui Department Store"),
        "{}",
        queue.html
    );
    let page = world
        .get(&format!("/console/applications/{id}"), Some(&maker), &[])
        .await;
    assert!(
        page.html.contains("mcc-risk") && page.html.contains("621700*********"),
        "{}",
        page.html
    );
    let decide = |session: String, csrf: String, decision: &'static str| {
        let world = &world;
        let id = id.clone();
        async move {
            world
                .post(
                    &format!("/console/applications/{id}/decision"),
                    Some(&session),
                    &format!("csrf={csrf}&decision={decision}&reason="),
                )
                .await
        }
    };
    let early = decide(maker.clone(), page.csrf(), "approve").await;
    assert!(
        early.html.contains("first recommended by one operator"),
        "{}",
        early.html
    );
    let recommended = decide(maker.clone(), page.csrf(), "recommend").await;
    assert!(
        recommended.html.contains("Recommended by (maker)"),
        "{}",
        recommended.html
    );
    let same = decide(maker.clone(), page.csrf(), "approve").await;
    assert!(
        same.html.contains("another operator must approve it"),
        "{}",
        same.html
    );
    let forged = world
        .post(
            &format!("/console/applications/{id}/decision"),
            Some(&maker),
            "csrf=forged&decision=approve",
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    let checker = world.sign_in("checker").await;
    let page = world
        .get(&format!("/console/applications/{id}"), Some(&checker), &[])
        .await;
    let approved = decide(checker.clone(), page.csrf(), "approve").await;
    assert!(
        approved.html.contains("class=\"activation-code\"")
            && approved.html.contains("id=\"invitation\""),
        "{}",
        approved.html
    );
    assert!(
        approved.html.contains("demo-checker"),
        "the checker is recorded"
    );

    // The new terminals are managed on the fleet page; no key is shown there.
    let fleet = world.get("/console/fleet", Some(&checker), &[]).await;
    let terminal_id = fleet
        .html
        .split("<tr id=\"fleet-")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        fleet.html.matches("<tr id=\"fleet-").count(),
        2,
        "{}",
        fleet.html
    );
    assert!(fleet.html.contains("Provisioned") && fleet.html.contains("EP-C10 countertop"));
    let act = |action: &'static str, csrf: String| {
        let world = &world;
        let (session, terminal_id) = (checker.clone(), terminal_id.clone());
        async move {
            world
                .post(
                    &format!("/console/fleet/{terminal_id}"),
                    Some(&session),
                    &format!("csrf={csrf}&action={action}"),
                )
                .await
        }
    };
    let lost = act("lost", fleet.csrf()).await;
    assert!(
        lost.html.contains("status is changed") && lost.html.contains("Lost"),
        "{}",
        lost.html
    );
    let refused = act("active", fleet.csrf()).await;
    assert!(
        refused
            .html
            .contains("cannot do this from its current status"),
        "{}",
        refused.html
    );
    act("provisioned", fleet.csrf()).await;
    let code = act("code", fleet.csrf()).await;
    assert!(code.html.contains("id=\"fleet-code\""), "{}", code.html);
    let rekeyed = act("rekey", fleet.csrf()).await;
    assert!(
        rekeyed.html.contains("id=\"fleet-code\"") && rekeyed.html.contains("Provisioned"),
        "{}",
        rekeyed.html
    );
    assert!(
        !code.html.to_lowercase().contains("master"),
        "no key on the page"
    );
    let other_merchant = world.sign_in("shanghai.admin").await;
    let theirs = world
        .get("/console/fleet", Some(&other_merchant), &[])
        .await;
    assert!(
        !theirs.html.contains(&terminal_id),
        "another merchant's terminals are not shown"
    );

    // The demo partner submitted nothing: it sees no application, and this one not at all.
    let partner = world.sign_in("partner").await;
    let list = world
        .get("/console/applications", Some(&partner), &[])
        .await;
    assert!(!list.html.contains(&id));
    let peek = world
        .get(&format!("/console/applications/{id}"), Some(&partner), &[])
        .await;
    assert_eq!(peek.status, StatusCode::NOT_FOUND);
    let cashier = world.sign_in("shanghai.cashier").await;
    let refused = world
        .get("/console/applications", Some(&cashier), &[])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_merchant_admin_works_a_risk_case_to_a_terminal_block() {
    let world = world().await;
    let case = world
        .store
        .open_case(store::cases::NewCase {
            at: NOW_SECONDS as i64,
            merchant_id: demo::SHANGHAI_MERCHANT.into(),
            terminal_id: "10000001".into(),
            card_id: "card-CH001-D".into(),
            rules: "card-velocity(review,10): 4 authorizations on the card in 600 s (at most 3)"
                .into(),
            severity: "review".into(),
            rule_names: vec!["card-velocity".into()],
        })
        .await
        .unwrap();
    let admin = world.sign_in("shanghai.admin").await;
    let list = world.get("/console/cases", Some(&admin), &[]).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(
        list.html
            .contains(&format!("href=\"/console/cases/{case}\""))
    );
    assert!(
        list.html.contains(&masked("card-CH001-D")),
        "the card masked"
    );
    assert!(!list.html.contains("card-CH001-D"), "never its id");

    let path = format!("/console/cases/{case}");
    let page = world.get(&path, Some(&admin), &[]).await;
    assert!(page.html.contains("card-velocity(review,10)"));
    assert!(
        !page.html.contains("value=\"block_card\""),
        "a merchant does not block cards"
    );
    let csrf = page.csrf();
    let forged = world
        .post(
            &format!("{path}/comments"),
            Some(&admin),
            "csrf=forged&text=x",
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let commented = world
        .post(
            &format!("{path}/comments"),
            Some(&admin),
            &format!("csrf={csrf}&text=the+night+shift"),
        )
        .await;
    assert_eq!(commented.status, StatusCode::SEE_OTHER);
    let refused = world
        .post(
            &format!("{path}/assign"),
            Some(&admin),
            &format!("csrf={csrf}&assignee=shanghai.cashier"),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.html.contains("not a user who may work this case"));
    let assigned = world
        .post(
            &format!("{path}/assign"),
            Some(&admin),
            &format!("csrf={csrf}&assignee=shanghai.manager"),
        )
        .await;
    assert_eq!(assigned.status, StatusCode::SEE_OTHER);
    let resolved = world
        .post(
            &format!("{path}/resolve"),
            Some(&admin),
            &format!("csrf={csrf}&outcome=block_terminal&reason=insider"),
        )
        .await;
    assert_eq!(resolved.status, StatusCode::SEE_OTHER);
    let page = world.get(&path, Some(&admin), &[]).await;
    assert!(page.html.contains("the night shift"));
    assert!(
        page.html
            .contains("<dd id=\"case-assignee\">shanghai.manager</dd>")
    );
    assert!(
        page.html
            .contains("<dd id=\"case-outcome\">block_terminal</dd>")
    );
    assert!(
        !page.html.contains("/resolve\""),
        "no resolve form once resolved"
    );
    let freezes = world.store.freezes().await.unwrap();
    assert_eq!(
        (freezes[0].scope.as_str(), freezes[0].target.as_str()),
        ("terminal", "10000001")
    );

    // A cashier has no case queue; another merchant's admin does not find this case.
    let cashier = world.sign_in("shanghai.cashier").await;
    let page = world.get("/console/cases", Some(&cashier), &[]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let beijing = world.sign_in("beijing.admin").await;
    let page = world.get(&path, Some(&beijing), &[]).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    let page = world.get("/console/cases", Some(&beijing), &[]).await;
    assert!(!page.html.contains(&format!("/console/cases/{case}\"")));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_emergency_page_freezes_refunds_at_once_and_lifts_them() {
    let world = world().await;
    let manager = world.sign_in("shanghai.manager").await;
    let page = world.get("/console/emergency", Some(&manager), &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    let refunds = format!("refunds:{}", demo::SHANGHAI_MERCHANT);
    assert!(page.html.contains(&format!("value=\"{refunds}\"")));
    assert!(page.html.contains("value=\"terminal:10000002\""));
    assert!(!page.html.contains(demo::BEIJING_MERCHANT), "only its own");
    let csrf = page.csrf();
    let no_reason = world
        .post(
            "/console/emergency/freeze",
            Some(&manager),
            &format!("csrf={csrf}&target={refunds}&reason=+"),
        )
        .await;
    assert_eq!(no_reason.status, StatusCode::BAD_REQUEST);
    assert!(no_reason.html.contains("say why"));
    let foreign = world
        .post(
            "/console/emergency/freeze",
            Some(&manager),
            &format!("csrf={csrf}&target=terminal:20000001&reason=x"),
        )
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    let frozen = world
        .post(
            "/console/emergency/freeze",
            Some(&manager),
            &format!("csrf={csrf}&target={refunds}&reason=refund+spike+on+the+night+shift"),
        )
        .await;
    assert_eq!(frozen.status, StatusCode::SEE_OTHER);
    let stored = world.store.freezes().await.unwrap();
    assert_eq!(
        (stored[0].scope.as_str(), stored[0].frozen_by.as_str()),
        ("refunds", "shanghai.manager")
    );
    let page = world.get("/console/emergency", Some(&manager), &[]).await;
    assert!(page.html.contains("refund spike on the night shift"));
    let lifted = world
        .post(
            "/console/emergency/thaw",
            Some(&manager),
            &format!("csrf={}&target={refunds}", page.csrf()),
        )
        .await;
    assert_eq!(lifted.status, StatusCode::SEE_OTHER);
    assert!(world.store.freezes().await.unwrap().is_empty());
    let actions: Vec<_> = world
        .store
        .audit_entries(store::audit::AuditQuery {
            action_prefix: Some("freeze.".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.action, e.target))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("freeze.put".to_owned(), refunds.clone()),
            ("freeze.delete".to_owned(), refunds.clone())
        ]
    );
    // A cashier has no emergency page.
    let cashier = world.sign_in("shanghai.cashier").await;
    let page = world.get("/console/emergency", Some(&cashier), &[]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cashier_refunds_in_part_and_a_manager_approves_above_the_threshold() {
    let world = world().await;
    let cashier = world.sign_in("shanghai.cashier").await;
    let page = world.get("/console/refunds", Some(&cashier), &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("id=\"new-refund\""));
    let csrf = page.csrf();
    let refund = |transaction: i64, amount: &str| {
        format!("csrf={csrf}&transaction={transaction}&amount_minor={amount}&reason=returned")
    };
    let too_much = world
        .post(
            "/console/refunds",
            Some(&cashier),
            &refund(world.shanghai_sale, "1251"),
        )
        .await;
    assert_eq!(too_much.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        too_much.html.contains("left to refund: 1250"),
        "{}",
        too_much.html
    );
    let foreign = world
        .post(
            "/console/refunds",
            Some(&cashier),
            &refund(world.beijing_sale, "100"),
        )
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    let small = world
        .post(
            "/console/refunds",
            Some(&cashier),
            &refund(world.shanghai_sale, "200"),
        )
        .await;
    assert_eq!(small.status, StatusCode::SEE_OTHER, "{}", small.html);
    let big = world
        .post(
            "/console/refunds",
            Some(&cashier),
            &refund(world.shanghai_sale, "1050"),
        )
        .await;
    assert_eq!(big.status, StatusCode::SEE_OTHER, "{}", big.html);
    let stored = world
        .store
        .refunds_of_transaction(world.shanghai_sale)
        .await
        .unwrap();
    assert_eq!(
        stored
            .iter()
            .map(|refund| refund.status.as_str())
            .collect::<Vec<_>>(),
        ["refunded", "pending_approval"]
    );
    let pending = stored[1].id.clone();
    let page = world.get("/console/refunds", Some(&cashier), &[]).await;
    assert!(
        !page.html.contains("value=\"approve\""),
        "a cashier approves nothing"
    );
    let manager = world.sign_in("shanghai.manager").await;
    let page = world.get("/console/refunds", Some(&manager), &[]).await;
    assert!(page.html.contains(&pending) && page.html.contains("value=\"approve\""));
    let approved = world
        .post(
            &format!("/console/refunds/{pending}"),
            Some(&manager),
            &format!("csrf={}&action=approve", page.csrf()),
        )
        .await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.html);
    let refund = world.store.refund(&pending).await.unwrap().unwrap();
    assert_eq!(
        (refund.status.as_str(), refund.decided_by.as_str()),
        ("refunded", "shanghai.manager")
    );
    // A Beijing administrator does not see Shanghai's refunds.
    let beijing = world.sign_in("beijing.admin").await;
    let page = world.get("/console/refunds", Some(&beijing), &[]).await;
    assert!(!page.html.contains(&pending));
}

/// `text` as an `application/x-www-form-urlencoded` value.
fn form_value(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                (byte as char).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_risk_rules_page_saves_versions_refuses_a_bad_file_and_rolls_back() {
    let world = world().await;
    let rules = |max_count: u32| {
        format!(
            "[[rule]]\nname = \"card-velocity\"\nkind = \"velocity\"\nscope = \"card\"\nwindow_secs = 600\nmax_count = {max_count}\naction = \"decline\"\nresponse_code = \"65\"\n"
        )
    };
    world
        .store
        .save_risk_rules(
            0,
            rules(10),
            "system".into(),
            1_764_000_000,
            "the demo rules".into(),
        )
        .await
        .unwrap();
    let operator = world.sign_in("operator").await;
    let page = world.get("/console/risk-rules", Some(&operator), &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("max_count = 10"));
    assert!(page.html.contains("name=\"based_on\" value=\"1\""));

    // A file with a mistake is refused, the setting named, the edit kept in the editor.
    let broken = rules(3).replace("scope = \"card\"\n", "scope = \"galaxy\"\n");
    let refused = world
        .post(
            "/console/risk-rules/save",
            Some(&operator),
            &format!(
                "csrf={}&based_on=1&toml={}&note=x",
                page.csrf(),
                form_value(&broken)
            ),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.html.contains("nothing was changed"),
        "{}",
        refused.html
    );
    assert!(refused.html.contains("galaxy"), "the edit is kept");
    assert_eq!(
        world
            .store
            .current_risk_rules()
            .await
            .unwrap()
            .unwrap()
            .version,
        1
    );

    let saved = world
        .post(
            "/console/risk-rules/save",
            Some(&operator),
            &format!(
                "csrf={}&based_on=1&toml={}&note=tighter",
                page.csrf(),
                form_value(&rules(3).replace('\n', "\r\n"))
            ),
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    let current = world.store.current_risk_rules().await.unwrap().unwrap();
    assert_eq!(
        (
            current.version,
            current.toml.clone(),
            current.saved_by.as_str()
        ),
        (2, rules(3), "operator")
    );
    let page = world.get("/console/risk-rules", Some(&operator), &[]).await;
    assert!(
        page.html.contains("- max_count = 10\n+ max_count = 3"),
        "{}",
        page.html
    );

    let rolled = world
        .post(
            "/console/risk-rules/rollback",
            Some(&operator),
            &format!("csrf={}&version=1", page.csrf()),
        )
        .await;
    assert_eq!(rolled.status, StatusCode::SEE_OTHER);
    let current = world.store.current_risk_rules().await.unwrap().unwrap();
    assert_eq!(
        (current.version, current.toml, current.note.as_str()),
        (3, rules(10), "rollback to version 1")
    );

    // The rules are the acquirer's: a merchant's admin has no page.
    let admin = world.sign_in("shanghai.admin").await;
    let page = world.get("/console/risk-rules", Some(&admin), &[]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread")]
async fn settlement_reports_are_shown_to_operators_and_each_merchant_its_own() {
    use store::settlement_reports::SettlementReport;
    let world = world().await;
    let report = |name: &str, kind: &str, merchant: Option<&str>, content: &str| SettlementReport {
        date: "2025-11-24".into(),
        name: name.into(),
        kind: kind.into(),
        merchant_id: merchant.map(str::to_owned),
        currency: "CNY".into(),
        written_at: 1,
        content: content.as_bytes().to_vec(),
    };
    let shanghai = demo::SHANGHAI_MERCHANT;
    let beijing = demo::BEIJING_MERCHANT;
    world
        .store
        .put_settlement_reports(vec![
            report(
                &format!("statement-{shanghai}-CNY-2025-11-24.csv"),
                "statement",
                Some(shanghai),
                "record,total\nSHANGHAI-FIGURES\n",
            ),
            report(
                &format!("statement-{shanghai}-CNY-2025-11-24.pdf"),
                "statement",
                Some(shanghai),
                "%PDF-1.4 shanghai",
            ),
            report(
                &format!("statement-{beijing}-CNY-2025-11-24.csv"),
                "statement",
                Some(beijing),
                "BEIJING-FIGURES",
            ),
            report("clearing-20-CNY-2025-11-24.csv", "clearing", None, "CLEARING"),
            report(
                "reconciliation-2025-11-24.csv",
                "reconciliation",
                None,
                "date,break,detail\n2025-11-24,transfer_not_in_journal,\"made by no message, code 10\"\n",
            ),
        ])
        .await
        .unwrap();

    // The acquirer's operator: every report, and the breaks as a table.
    let operator = world.sign_in("operator").await;
    let list = world.get("/console/settlement", Some(&operator), &[]).await;
    assert!(
        list.html
            .contains("href=\"/console/settlement/2025-11-24\""),
        "{}",
        list.html
    );
    let cycle = world
        .get("/console/settlement/2025-11-24", Some(&operator), &[])
        .await;
    assert_eq!(cycle.status, StatusCode::OK);
    for name in [
        format!("statement-{beijing}-CNY-2025-11-24.csv"),
        "clearing-20-CNY-2025-11-24.csv".to_owned(),
    ] {
        assert!(cycle.html.contains(&name), "{name}");
    }
    assert!(
        cycle
            .html
            .contains("<td class=\"mono\">made by no message, code 10</td>"),
        "{}",
        cycle.html
    );
    let clearing = world
        .get(
            "/console/settlement/2025-11-24/clearing-20-CNY-2025-11-24.csv",
            Some(&operator),
            &[],
        )
        .await;
    assert_eq!(
        (clearing.status, clearing.html.as_str()),
        (StatusCode::OK, "CLEARING")
    );

    // A merchant's admin: its own statements, as CSV and PDF, and nothing else.
    let admin = world.sign_in("shanghai.admin").await;
    let cycle = world
        .get("/console/settlement/2025-11-24", Some(&admin), &[])
        .await;
    assert_eq!(cycle.status, StatusCode::OK);
    assert!(
        cycle
            .html
            .contains(&format!("statement-{shanghai}-CNY-2025-11-24.pdf"))
    );
    assert!(!cycle.html.contains(beijing) && !cycle.html.contains("clearing-20"));
    assert!(
        !cycle.html.contains("id=\"breaks\""),
        "no reconciliation for merchants"
    );
    let pdf = world
        .get(
            &format!("/console/settlement/2025-11-24/statement-{shanghai}-CNY-2025-11-24.pdf"),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(pdf.status, StatusCode::OK);
    assert_eq!(pdf.headers["content-type"], "application/pdf");
    assert_eq!(
        pdf.headers["content-disposition"],
        format!("attachment; filename=\"statement-{shanghai}-CNY-2025-11-24.pdf\"")
    );
    assert!(pdf.html.starts_with("%PDF"));
    for other in [
        format!("statement-{beijing}-CNY-2025-11-24.csv"),
        "clearing-20-CNY-2025-11-24.csv".to_owned(),
        "reconciliation-2025-11-24.csv".to_owned(),
    ] {
        let refused = world
            .get(
                &format!("/console/settlement/2025-11-24/{other}"),
                Some(&admin),
                &[],
            )
            .await;
        assert_eq!(refused.status, StatusCode::NOT_FOUND, "{other}");
        assert!(!refused.html.contains("BEIJING-FIGURES") && !refused.html.contains("CLEARING"));
    }
    // The other merchant's admin finds its own day, and not Shanghai's statements.
    let beijing_admin = world.sign_in("beijing.admin").await;
    let cycle = world
        .get("/console/settlement/2025-11-24", Some(&beijing_admin), &[])
        .await;
    assert!(
        cycle
            .html
            .contains(&format!("statement-{beijing}-CNY-2025-11-24.csv"))
    );
    assert!(!cycle.html.contains(shanghai));
    // A date with nothing to show, or not a date at all.
    for path in [
        "/console/settlement/2025-11-23",
        "/console/settlement/..%2F",
    ] {
        let missing = world.get(path, Some(&admin), &[]).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND, "{path}");
    }
    // A cashier has no settlement pages; signed out is sent to the login.
    let cashier = world.sign_in("shanghai.cashier").await;
    let refused = world
        .get("/console/settlement/2025-11-24", Some(&cashier), &[])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let signed_out = world.get("/console/settlement", None, &[]).await;
    assert_eq!(signed_out.status, StatusCode::SEE_OTHER);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_merchant_opens_an_incident_that_operations_and_the_partner_work() {
    let world = world().await;
    // The Beijing merchant (referred by the demo partner) opens one about its sale.
    let admin = world.sign_in("beijing.admin").await;
    let list = world.get("/console/incidents", Some(&admin), &[]).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(
        list.html.contains("id=\"open-incident\""),
        "a merchant may open one"
    );
    let csrf = list.csrf();
    let foreign = world
        .post(
            "/console/incidents",
            Some(&admin),
            &format!(
                "csrf={csrf}&title=x&severity=high&description=d&transactions={}",
                world.shanghai_sale
            ),
        )
        .await;
    assert_eq!(foreign.status, StatusCode::BAD_REQUEST);
    assert!(foreign.html.contains("no transaction of your merchant"));
    let opened = world
        .post(
            "/console/incidents",
            Some(&admin),
            &format!(
                "csrf={csrf}&title=Card+reader+fails&severity=critical&description=since+noon&transactions={}&cases=",
                world.beijing_sale
            ),
        )
        .await;
    assert_eq!(opened.status, StatusCode::SEE_OTHER, "{}", opened.html);
    let path = opened.location();
    let page = world.get(&path, Some(&admin), &[]).await;
    assert!(page.html.contains("Card reader fails"));
    assert!(page.html.contains(&format!(
        "href=\"/console/transactions/{}\"",
        world.beijing_sale
    )));
    assert!(page.html.contains(demo::DEMO_PARTNER), "the partner told");
    assert!(
        !page.html.contains("value=\"acknowledged\""),
        "the merchant does not acknowledge"
    );

    // A file with the message, as a browser sends it.
    let boundary = "----easyposBoundary7";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\nthe error screen\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"screen.png\"\r\nContent-Type: image/png\r\n\r\n",
        page.csrf()
    )
    .into_bytes();
    body.extend_from_slice(b"\x89PNG\r\n\x1a\nscreen");
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let request = Request::post(format!("{path}/messages"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .header("cookie", format!("ep_session={admin}"))
        .body(Body::from(body))
        .unwrap();
    let sent = world.send(request).await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER);
    let page = world.get(&path, Some(&admin), &[]).await;
    assert!(page.html.contains("the error screen"));
    assert!(
        page.html
            .contains(&format!("href=\"{path}/attachments/2\""))
    );
    assert!(page.html.contains("screen.png"));
    let file = world
        .get(&format!("{path}/attachments/2"), Some(&admin), &[])
        .await;
    assert_eq!(file.headers["content-type"], "image/png");

    // Operations see it and acknowledge it; the partner sees it too; Shanghai does not.
    let operator = world.sign_in("operator").await;
    let list = world.get("/console/incidents", Some(&operator), &[]).await;
    assert!(list.html.contains("Card reader fails"));
    assert!(
        !list.html.contains("id=\"open-incident\""),
        "operations do not open them"
    );
    let page = world.get(&path, Some(&operator), &[]).await;
    assert!(page.html.contains("value=\"acknowledged\""));
    let acknowledged = world
        .post(
            &format!("{path}/status"),
            Some(&operator),
            &format!(
                "csrf={}&status=acknowledged&note=engineer+on+the+way",
                page.csrf()
            ),
        )
        .await;
    assert_eq!(acknowledged.status, StatusCode::SEE_OTHER);
    let partner = world.sign_in("partner").await;
    let page = world.get(&path, Some(&partner), &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("engineer on the way"));
    assert!(
        page.html
            .contains("<dd id=\"incident-status\">acknowledged</dd>")
    );
    let shanghai = world.sign_in("shanghai.manager").await;
    assert_eq!(
        world.get(&path, Some(&shanghai), &[]).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_emergency_page_drops_terminal_keys_and_makes_staff_choose_new_passwords() {
    let world = world().await;
    let cashier = world.sign_in("shanghai.cashier").await;
    assert_eq!(
        world
            .get("/console/transactions", Some(&cashier), &[])
            .await
            .status,
        StatusCode::OK
    );
    let manager = world.sign_in("shanghai.manager").await;
    let page = world.get("/console/emergency", Some(&manager), &[]).await;
    assert!(page.html.contains("id=\"key-change\""));
    assert!(
        !page.html.contains("id=\"password-reset\""),
        "a manager does not reset passwords"
    );

    let admin = world.sign_in("shanghai.admin").await;
    let page = world.get("/console/emergency", Some(&admin), &[]).await;
    let csrf = page.csrf();
    let keys = world
        .post(
            "/console/emergency/key-change",
            Some(&admin),
            &format!("csrf={csrf}&target=10000001&reason=left+open+overnight"),
        )
        .await;
    assert_eq!(keys.status, StatusCode::OK);
    assert!(
        keys.html
            .contains("new keys at the next sign-on of terminal 10000001")
    );
    let foreign = world
        .post(
            "/console/emergency/key-change",
            Some(&admin),
            &format!("csrf={csrf}&target=20000001&reason=x"),
        )
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    let reset = world
        .post(
            "/console/emergency/password-reset",
            Some(&admin),
            &format!(
                "csrf={csrf}&target={}&reason=passwords+on+the+till",
                demo::SHANGHAI_MERCHANT
            ),
        )
        .await;
    assert_eq!(reset.status, StatusCode::OK);
    assert!(reset.html.contains("shanghai.cashier"));

    // At once: the cashier's next page is the new-password page, whatever was asked.
    let sent = world
        .get("/console/transactions", Some(&cashier), &[])
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER);
    assert_eq!(sent.location(), "/console/password");
    let form = world.get("/console/password", Some(&cashier), &[]).await;
    assert_eq!(form.status, StatusCode::OK);
    let csrf = form.csrf();
    let differ = world
        .post(
            "/console/password",
            Some(&cashier),
            &format!("csrf={csrf}&password=a+new+long+passphrase&again=another+one+entirely"),
        )
        .await;
    assert_eq!(differ.status, StatusCode::BAD_REQUEST);
    let same = world
        .post(
            "/console/password",
            Some(&cashier),
            &format!("csrf={csrf}&password={0}&again={0}", demo::DEMO_PASSWORD),
        )
        .await;
    assert_eq!(same.status, StatusCode::BAD_REQUEST);
    assert!(same.html.contains("must differ"));
    let changed = world
        .post(
            "/console/password",
            Some(&cashier),
            &format!("csrf={csrf}&password=a+new+long+passphrase&again=a+new+long+passphrase"),
        )
        .await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER);
    assert_eq!(
        world
            .get("/console/transactions", Some(&cashier), &[])
            .await
            .status,
        StatusCode::OK
    );
    // The admin who asked was not reset; the manager is sent to choose too.
    assert_eq!(
        world
            .get("/console/emergency", Some(&admin), &[])
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        world
            .get("/console/emergency", Some(&manager), &[])
            .await
            .location(),
        "/console/password"
    );
    let actions: Vec<String> = world
        .store
        .audit_entries(store::audit::AuditQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|entry| entry.action)
        .collect();
    for action in [
        "terminal.key_change",
        "staff.password_reset",
        "user.password_change",
    ] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} in {actions:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn staff_who_have_not_acknowledged_the_procedures_are_asked_at_sign_in() {
    let world = world().await;
    let login = async |username: &str| {
        let form = world.get("/console/login", None, &[]).await;
        world
            .post(
                "/console/login",
                Some(&form.session()),
                &format!(
                    "username={username}&password={}&csrf={}",
                    demo::DEMO_PASSWORD,
                    form.csrf()
                ),
            )
            .await
    };
    // No procedures yet: the cashier lands on the portal as before.
    assert_eq!(
        login("shanghai.cashier").await.location(),
        "/console/dashboard"
    );
    let admin = world.sign_in("shanghai.admin").await;
    let page = world.get("/console/procedures", Some(&admin), &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.html.contains("id=\"procedures-editor\""),
        "{}",
        page.html
    );
    let saved = world
        .post(
            "/console/procedures/save",
            Some(&admin),
            &format!(
                "csrf={}&based_on=0&text=1.+Refunds+need+a+supervisor.%0D%0A2.+Never+share+a+password.&note=first",
                page.csrf()
            ),
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    // A stale editor is refused, and its text is kept in the editor.
    let stale = world
        .post(
            "/console/procedures/save",
            Some(&admin),
            &format!("csrf={}&based_on=0&text=Another+draft", page.csrf()),
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert!(stale.html.contains("Another draft"));

    // Now the cashier is sent to the procedures at sign-in, and acknowledges them.
    let answer = login("shanghai.cashier").await;
    assert_eq!(answer.location(), "/console/procedures");
    let cashier = answer.session();
    let page = world.get("/console/procedures", Some(&cashier), &[]).await;
    assert!(
        page.html.contains("Never share a password."),
        "{}",
        page.html
    );
    assert!(page.html.contains("id=\"acknowledge\""));
    assert!(
        !page.html.contains("id=\"procedures-editor\"") && !page.html.contains("training-record"),
        "a cashier neither edits nor sees the record"
    );
    let refused = world
        .post(
            "/console/procedures/save",
            Some(&cashier),
            &format!("csrf={}&based_on=1&text=mine", page.csrf()),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let acknowledged = world
        .post(
            "/console/procedures/acknowledge",
            Some(&cashier),
            &format!("csrf={}&version=1", page.csrf()),
        )
        .await;
    assert_eq!(acknowledged.status, StatusCode::OK, "{}", acknowledged.html);
    assert!(acknowledged.html.contains("id=\"procedures-done\""));
    assert_eq!(
        login("shanghai.cashier").await.location(),
        "/console/dashboard",
        "asked once per version"
    );

    // The admin sees who has and who has not acknowledged version 1.
    let page = world.get("/console/procedures", Some(&admin), &[]).await;
    let record = page.html.split("id=\"training-record\"").nth(1).unwrap();
    let row = |user: &str| {
        record
            .split("<tr>")
            .find(|row| row.contains(&format!(">{user}<")))
            .unwrap()
            .to_owned()
    };
    assert!(row("shanghai.cashier").contains("acknowledged"), "{record}");
    assert!(row("shanghai.manager").contains("not yet"), "{record}");
    assert!(!record.contains("beijing.admin"));
    // Another merchant's admin sees none of it.
    let beijing = world.sign_in("beijing.admin").await;
    let page = world.get("/console/procedures", Some(&beijing), &[]).await;
    assert!(!page.html.contains("Never share a password."));
    // Operators have no procedures page.
    let operator = world.sign_in("operator").await;
    assert_eq!(
        world
            .get("/console/procedures", Some(&operator), &[])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let actions: Vec<String> = world
        .store
        .audit_entries(store::audit::AuditQuery {
            action_prefix: Some("procedures.".into()),
            ..store::audit::AuditQuery::page(0, 100)
        })
        .await
        .unwrap()
        .iter()
        .map(|e| format!("{} {} {}", e.actor, e.action, e.target))
        .collect();
    assert_eq!(
        actions,
        [
            "shanghai.admin procedures.save procedures:1",
            "shanghai.cashier procedures.acknowledge procedures:1"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_log_is_searched_and_exported_with_a_proof_that_catches_tampering() {
    let world = world().await;
    let admin = world.sign_in("shanghai.admin").await;
    // Something to find: the admin freezes a terminal, ten minutes later lifts it.
    let page = world.get("/console/emergency", Some(&admin), &[]).await;
    let freeze = format!("csrf={}&target=terminal:10000001&reason=lost", page.csrf());
    world
        .post("/console/emergency/freeze", Some(&admin), &freeze)
        .await;
    world.clock.advance(600 * 1_000_000_000);
    let thaw = format!("csrf={}&target=terminal:10000001", page.csrf());
    world
        .post("/console/emergency/thaw", Some(&admin), &thaw)
        .await;
    let beijing = world.sign_in("beijing.admin").await;

    let search = world
        .get("/console/audit?action=freeze.", Some(&admin), &[])
        .await;
    assert_eq!(search.status, StatusCode::OK, "{}", search.html);
    let table = search.html.split("id=\"audit-entries\"").nth(1).unwrap();
    assert!(
        table.contains(">freeze.put<") && table.contains(">freeze.delete<"),
        "{table}"
    );
    assert!(
        !table.contains(">login.password<"),
        "only what was searched"
    );
    // A time range: before the thaw only (the freeze was at NOW_SECONDS).
    let before = api::time::rfc3339_seconds(NOW_SECONDS as i64 + 60);
    let ranged = world
        .get(
            &format!("/console/audit?action=freeze.&to={before}"),
            Some(&admin),
            &[],
        )
        .await;
    let table = ranged.html.split("id=\"audit-entries\"").nth(1).unwrap();
    assert!(
        table.contains(">freeze.put<") && !table.contains(">freeze.delete<"),
        "{table}"
    );
    let bad = world
        .get("/console/audit?from=yesterday", Some(&admin), &[])
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    // Beijing sees none of Shanghai's entries; a cashier has no audit page.
    let other = world
        .get("/console/audit?action=freeze.", Some(&beijing), &[])
        .await;
    assert!(!other.html.contains(">freeze.put<"));
    let cashier = world.sign_in("shanghai.cashier").await;
    assert_eq!(
        world
            .get("/console/audit", Some(&cashier), &[])
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // The export: the entries, their chain hashes, the head and the platform's signature.
    let exported = world
        .get(
            "/console/audit/export?actor=shanghai.admin",
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(exported.status, StatusCode::OK, "{}", exported.html);
    assert!(
        exported.headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let document: store::audit_export::AuditExport = serde_json::from_str(&exported.html).unwrap();
    assert!(document.entries.len() >= 4, "{:?}", document.entries);
    assert!(document.entries.iter().all(|e| e.actor == "shanghai.admin"));
    assert!(
        document
            .entries
            .iter()
            .all(|e| e.tenant == format!("merchant:{}", demo::SHANGHAI_MERCHANT))
    );
    let check = store::audit_export::verify_export(&document, None);
    assert_eq!(check.problem, None);
    let key = world.store.audit_anchor_keys().await.unwrap();
    assert_eq!(
        check.public_key, key[0].public_key,
        "signed with the platform's anchor key"
    );
    assert_eq!(
        store::audit_export::verify_export(&document, Some(&key[0].public_key)).problem,
        None
    );
    // Tampered: a reason changed, or an entry dropped.
    let mut tampered = document.clone();
    let freeze_put = tampered
        .entries
        .iter_mut()
        .find(|e| e.action == "freeze.put")
        .unwrap();
    freeze_put.detail = "a routine check".into();
    let seq = freeze_put.seq;
    assert_eq!(
        store::audit_export::verify_export(&tampered, None).problem,
        Some(format!(
            "entry {seq} was changed: its contents no longer give its hash"
        ))
    );
    let mut cut = document.clone();
    cut.entries.retain(|e| e.action != "freeze.delete");
    assert!(
        store::audit_export::verify_export(&cut, None)
            .problem
            .unwrap()
            .starts_with("the export's signature does not hold")
    );
    // The export itself is in the log.
    let last = world
        .store
        .audit_entries(store::audit::AuditQuery {
            action_prefix: Some("audit.export".into()),
            ..store::audit::AuditQuery::page(0, 10)
        })
        .await
        .unwrap();
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].actor, "shanghai.admin");
}
