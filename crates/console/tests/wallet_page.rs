#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The wallet page (`/wallet`) in-process, on SQLite: only the wallet's owner sees it; a deep
//! link survives the login; a pasted code and an uploaded picture of it show merchant and
//! amount; the password confirms (a wrong one says the tries left and charges nothing); bad
//! codes are refused with a reason and charge nothing; top-up, balance and history.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use money::{Amount, Currency};
use std::sync::Arc;
use store::Store;
use tower::ServiceExt;
use wallet::{NewOrder, NewWallet, WalletConfig, Wallets};

struct World {
    store: Arc<Store>,
    router: axum::Router,
    wallets: Wallets,
    _backend: store::testing::TestBackend,
}

struct Page {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    html: String,
}

impl Page {
    fn session(&self) -> String {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|value| value.to_str().unwrap().to_owned())
            .find(|cookie| cookie.starts_with("ep_session="))
            .expect("a session cookie")
            .split(';')
            .next()
            .unwrap()
            .trim_start_matches("ep_session=")
            .to_owned()
    }

    fn csrf(&self) -> String {
        self.field("csrf")
    }

    /// The value of the hidden field `name`.
    fn field(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.html.find(&marker).expect("the field") + marker.len();
        let end = self.html[start..].find('"').unwrap();
        self.html[start..start + end].to_owned()
    }

    fn location(&self) -> String {
        self.headers["location"].to_str().unwrap().to_owned()
    }
}

fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

async fn world() -> World {
    let backend = store::testing::sqlite();
    let store = Arc::new(Store::open(&backend.backend).await.unwrap());
    let hsm: Arc<dyn hsm::Hsm> = Arc::new(hsm::SoftHsm::new(&[0x42; 32]).unwrap());
    demo::seed(&store, hsm.as_ref()).await.unwrap();
    demo::seed_users(&store).await.unwrap();
    let wallets = Wallets::new(store.clone(), WalletConfig::demo());
    wallets
        .open_wallet(NewWallet {
            id: "W-CH001".into(),
            cardholder_id: "CH001".into(),
            currency: Currency::CNY,
            linked_card_id: Some("card-CH001-D".into()),
            password: "135790".into(),
        })
        .await
        .unwrap();
    let mfa = console::mfa::Mfa::ensure(&store, hsm).await.unwrap();
    let store_handle = store.clone();
    let console =
        console::Console::new(api::ApiState::new(store), mfa).with_wallets(wallets.clone());
    World {
        router: console::router(console),
        wallets,
        store: store_handle,
        _backend: backend,
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
            html: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    async fn get(&self, path: &str, session: Option<&str>) -> Page {
        let mut request = Request::get(path);
        if let Some(session) = session {
            request = request.header("cookie", format!("ep_session={session}"));
        }
        self.send(request.body(Body::empty()).unwrap()).await
    }

    async fn post(&self, path: &str, session: &str, form: &str) -> Page {
        let request = Request::post(path)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", format!("ep_session={session}"));
        self.send(request.body(Body::from(form.to_owned())).unwrap())
            .await
    }

    /// Signs in through the login form (with `next` if the login page carried one).
    async fn sign_in(&self, username: &str, login_path: &str) -> Page {
        let form = self.get(login_path, None).await;
        let next = if form.html.contains("name=\"next\"") {
            format!("&next={}", encode(&form.field("next")))
        } else {
            String::new()
        };
        let answer = self
            .post(
                "/console/login",
                &form.session(),
                &format!(
                    "username={username}&password={}&csrf={}{next}",
                    demo::DEMO_PASSWORD,
                    form.csrf()
                ),
            )
            .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.html);
        answer
    }

    async fn order(&self, id: &str, minor: i64) -> wallet::Order {
        self.wallets
            .create_order(NewOrder {
                order_id: id.into(),
                terminal_id: "10000001".into(),
                amount: Amount::new(minor, Currency::CNY),
                timeout_seconds: None,
            })
            .await
            .unwrap()
    }

    async fn balance(&self) -> i64 {
        self.wallets.balance("W-CH001").await.unwrap().minor()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_owner_tops_up_scans_a_code_and_pays_it_with_the_password() {
    let world = world().await;
    let order = world.order("o-page-1", 1_234).await;

    // A deep link opened before signing in: the login brings the visitor back to it.
    let deep = format!("/wallet/scan?payload={}", encode(&order.payload));
    let away = world.get(&deep, None).await;
    assert_eq!(away.status, StatusCode::SEE_OTHER);
    assert!(
        away.location().starts_with("/console/login?next="),
        "{}",
        away.location()
    );
    let signed_in = world.sign_in("cardholder1", &away.location()).await;
    assert_eq!(signed_in.location(), deep);
    let session = signed_in.session();

    // The wallet page: empty, with the ways to scan and a top-up form.
    let home = world.get("/wallet", Some(&session)).await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.html);
    assert!(
        home.html.contains("W-CH001") && home.html.contains("CNY 0.00"),
        "{}",
        home.html
    );
    assert!(home.html.contains("No payments yet."));
    for form in ["id=\"paste\"", "id=\"upload\"", "id=\"top-up\""] {
        assert!(home.html.contains(form), "{form}");
    }

    // Paying with an empty wallet is refused after the password; nothing moves.
    let confirm = world.get(&deep, Some(&session)).await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.html);
    assert!(
        confirm.html.contains("Lujiazui Coffee, Shanghai"),
        "{}",
        confirm.html
    );
    assert!(confirm.html.contains("CNY 12.34"));
    let pay = |password: &str, page: &Page| {
        format!(
            "csrf={}&payload={}&password={password}",
            page.csrf(),
            encode(&order.payload)
        )
    };
    let poor = world
        .post("/wallet/pay", &session, &pay("135790", &confirm))
        .await;
    assert_eq!(poor.status, StatusCode::PAYMENT_REQUIRED, "{}", poor.html);
    assert!(
        poor.html.contains("Not enough money in the wallet"),
        "{}",
        poor.html
    );

    // Top up 100.00 from the linked card; the same form sent twice is one top-up.
    let top_up = format!(
        "csrf={}&top_up_id={}&amount=100.00&password=135790",
        home.csrf(),
        home.field("top_up_id")
    );
    for _ in 0..2 {
        let done = world.post("/wallet/top-up", &session, &top_up).await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.html);
        assert!(done.html.contains("CNY 100.00"), "{}", done.html);
    }
    assert_eq!(world.balance().await, 10_000);

    // A wrong password: the confirmation again, with the tries left, and nothing charged.
    let wrong = world
        .post("/wallet/pay", &session, &pay("000000", &confirm))
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.html.contains("Tries left: 4"), "{}", wrong.html);
    assert!(wrong.html.contains("id=\"confirm\""));
    assert_eq!(world.balance().await, 10_000);

    // The right password pays: the receipt, the new balance, the history.
    let paid = world
        .post("/wallet/pay", &session, &pay("135790", &confirm))
        .await;
    assert_eq!(paid.status, StatusCode::OK, "{}", paid.html);
    assert!(paid.html.contains("id=\"paid\""), "{}", paid.html);
    assert!(paid.html.contains("CNY 87.66"), "{}", paid.html);
    assert_eq!(world.balance().await, 8_766);
    let status = world.wallets.query("o-page-1").await.unwrap();
    assert_eq!(status.wallet_id.as_deref(), Some("W-CH001"));
    let home = world.get("/wallet", Some(&session)).await;
    assert!(home.html.contains("id=\"history\""), "{}", home.html);
    assert!(home.html.contains("Lujiazui Coffee") && home.html.contains("Paid"));

    // The same code again: already paid, nothing charged twice.
    let again = world.get(&deep, Some(&session)).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.html.contains("already paid"), "{}", again.html);
    assert_eq!(world.balance().await, 8_766);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_codes_are_refused_with_a_reason_and_charge_nothing() {
    let world = world().await;
    let session = world
        .sign_in("cardholder1", "/console/login")
        .await
        .session();
    let order = world.order("o-page-2", 500).await;
    let tampered = order.payload.replace("54045.00", "54040.01");
    assert_ne!(tampered, order.payload);
    let foreign = {
        let other = Wallets::new(
            Arc::new(
                Store::open(&store::testing::sqlite().backend)
                    .await
                    .unwrap(),
            ),
            WalletConfig {
                gui: "com.example.otherpay".into(),
                ..WalletConfig::demo()
            },
        );
        // Another institution's code for the same order: built with its GUI.
        wallet::qr::order_payload(
            other.config(),
            &order.record,
            wallet::qr::MerchantFields {
                id: &order.merchant_id,
                name: "Lujiazui Coffee",
                city: "Shanghai",
                mcc: "5814",
            },
        )
        .unwrap()
    };
    for (payload, status, reason) in [
        (
            tampered.as_str(),
            StatusCode::BAD_REQUEST,
            "check digits do not match",
        ),
        ("hello", StatusCode::BAD_REQUEST, "not a payment code"),
        (
            foreign.as_str(),
            StatusCode::BAD_REQUEST,
            "belongs to another wallet",
        ),
    ] {
        let page = world
            .get(
                &format!("/wallet/scan?payload={}", encode(payload)),
                Some(&session),
            )
            .await;
        assert_eq!(page.status, status, "{payload}: {}", page.html);
        assert!(page.html.contains(reason), "{payload}: {}", page.html);
        assert!(!page.html.contains("id=\"confirm\""));
    }
    // A forged post (no CSRF token of this session) pays nothing.
    let forged = world
        .post(
            "/wallet/pay",
            &session,
            &format!(
                "csrf=forged&payload={}&password=135790",
                encode(&order.payload)
            ),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(
        world.wallets.query("o-page-2").await.unwrap().status,
        store::wallets::OrderStatus::Created
    );
}

/// A multipart upload of `image` with the CSRF token.
fn upload(session: &str, csrf: &str, image: &[u8], content_type: &str) -> Request<Body> {
    let boundary = "----easypos-test-boundary";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n")
            .as_bytes(),
    );
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"code\"\r\nContent-Type: {content_type}\r\n\r\n")
            .as_bytes(),
    );
    body.extend_from_slice(image);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Request::post("/wallet/scan")
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .header("cookie", format!("ep_session={session}"))
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_picture_of_the_code_is_read_on_the_server() {
    let world = world().await;
    let session = world
        .sign_in("cardholder1", "/console/login")
        .await
        .session();
    let home = world.get("/wallet", Some(&session)).await;
    let order = world.order("o-page-3", 2_000).await;
    let png = wallet::image::png_of(&order.payload, 5).unwrap();
    let confirm = world
        .send(upload(&session, &home.csrf(), &png, "image/png"))
        .await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.html);
    assert!(confirm.html.contains("CNY 20.00") && confirm.html.contains("Lujiazui Coffee"));
    assert_eq!(confirm.field("payload"), order.payload);

    let not_a_picture = world
        .send(upload(&session, &home.csrf(), b"GIF89a", "image/gif"))
        .await;
    assert_eq!(not_a_picture.status, StatusCode::BAD_REQUEST);
    assert!(
        not_a_picture.html.contains("PNG or JPEG"),
        "{}",
        not_a_picture.html
    );
    let forged = world
        .send(upload(&session, "forged", &png, "image/png"))
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread")]
async fn only_a_cardholder_with_a_wallet_has_the_page() {
    let world = world().await;
    // A merchant's manager: not a wallet owner.
    let manager = world
        .sign_in("shanghai.manager", "/console/login")
        .await
        .session();
    assert_eq!(
        world.get("/wallet", Some(&manager)).await.status,
        StatusCode::FORBIDDEN
    );
    // cardholder2 has no wallet in this world.
    let other = world
        .sign_in("cardholder2", "/console/login")
        .await
        .session();
    assert_eq!(
        world.get("/wallet", Some(&other)).await.status,
        StatusCode::NOT_FOUND
    );
    // The login never sends anyone to another site.
    let form = world.get("/console/login?next=//evil.example/", None).await;
    assert!(!form.html.contains("evil.example"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_shows_a_one_time_payment_code_that_refreshes() {
    let world = world().await;
    let session = world
        .sign_in("cardholder1", "/console/login")
        .await
        .session();
    world
        .wallets
        .top_up("W-CH001", "t1", Amount::new(5_000, Currency::CNY))
        .await
        .unwrap();
    let home = world.get("/wallet", Some(&session)).await;
    let marker = "data-code=\"";
    let code_of = |html: &str| {
        let start = html.find(marker).expect("a payment code") + marker.len();
        html[start..start + 21].to_owned()
    };
    let first = code_of(&home.html);
    assert!(
        first.starts_with("8840") && first.bytes().all(|b| b.is_ascii_digit()),
        "{first}"
    );
    // Barcode and QR, and htmx asks for a new code every minute.
    assert!(home.html.contains("aria-label=\"barcode\""));
    assert!(
        home.html
            .contains("hx-get=\"/wallet/code\" hx-trigger=\"every 60s\"")
    );
    let fragment = world.get("/wallet/code", Some(&session)).await;
    assert_eq!(fragment.status, StatusCode::OK);
    assert!(!fragment.html.contains("<html"), "a fragment, not a page");
    let second = code_of(&fragment.html);
    assert_ne!(first, second);
    // The cashier's terminal charges the code shown.
    let charged = world
        .wallets
        .charge(wallet::payment_code::NewCharge {
            charge_id: "c-page".into(),
            terminal_id: "10000001".into(),
            amount: Amount::new(1_000, Currency::CNY),
            code: second,
        })
        .await
        .unwrap();
    assert_eq!(charged.wallet_id.as_deref(), Some("W-CH001"));
    assert_eq!(world.balance().await, 4_000);
    // Not signed in: no code.
    assert_eq!(
        world.get("/wallet/code", None).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_merchant_sees_its_qr_payments_and_not_the_payers_wallet_id() {
    let world = world().await;
    world
        .wallets
        .top_up("W-CH001", "t1", Amount::new(5_000, Currency::CNY))
        .await
        .unwrap();
    let order = world.order("o-merchant-1", 1_500).await;
    world
        .wallets
        .pay(&order.payload, "W-CH001", "135790")
        .await
        .unwrap();
    world.order("o-merchant-2", 800).await;
    let manager = world
        .sign_in("shanghai.manager", "/console/login")
        .await
        .session();
    let page = world.get("/console/qr-payments", Some(&manager)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.html.contains("o-merchant-1") && page.html.contains("o-merchant-2"));
    assert!(
        page.html.contains("CNY 15.00")
            && page.html.contains("Paid")
            && page.html.contains("Waiting")
    );
    assert!(
        page.html.contains("W-***01") && !page.html.contains("W-CH001"),
        "{}",
        page.html
    );
    // A cardholder has no merchant pages.
    let holder = world
        .sign_in("cardholder1", "/console/login")
        .await
        .session();
    assert_eq!(
        world
            .get("/console/qr-payments", Some(&holder))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_owner_sets_the_wallets_own_alerts_and_bad_settings_are_refused() {
    let world = world().await;
    let session = world
        .sign_in("cardholder1", "/console/login")
        .await
        .session();
    let home = world.get("/wallet", Some(&session)).await;
    assert!(
        home.html.contains("href=\"/wallet/alerts\""),
        "{}",
        home.html
    );
    let page = world.get("/wallet/alerts", Some(&session)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.html.contains("W-CH001"));
    let csrf = page.csrf();

    // Without the CSRF token nothing is saved.
    let forged = world
        .post(
            "/wallet/alerts",
            &session,
            "csrf=wrong&sms=on&phone=%2B8613800001234",
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    // A threshold that is not an amount, and a channel without its address: refused with
    // the reason, nothing saved.
    let bad_amount = world
        .post(
            "/wallet/alerts",
            &session,
            &format!("csrf={csrf}&sms=on&phone=%2B8613800001234&min_amount=lots"),
        )
        .await;
    assert_eq!(bad_amount.status, StatusCode::BAD_REQUEST);
    assert!(
        bad_amount.html.contains("give the amount in yuan"),
        "{}",
        bad_amount.html
    );
    // The refused form shows what was typed, to correct it rather than type it again.
    assert!(
        bad_amount.html.contains("value=\"lots\""),
        "{}",
        bad_amount.html
    );
    assert!(bad_amount.html.contains("value=\"+8613800001234\""));
    assert!(
        bad_amount
            .html
            .contains("name=\"sms\" value=\"on\" checked")
    );
    let no_phone = world
        .post(
            "/wallet/alerts",
            &session,
            &format!("csrf={csrf}&sms=on&min_amount=1"),
        )
        .await;
    assert_eq!(no_phone.status, StatusCode::BAD_REQUEST);
    assert!(
        no_phone.html.contains("channel sms needs phone"),
        "{}",
        no_phone.html
    );
    assert!(
        world
            .store
            .alert_preferences("W-CH001")
            .await
            .unwrap()
            .is_none()
    );

    let saved = world
        .post(
            "/wallet/alerts",
            &session,
            &format!("csrf={csrf}&email_channel=on&email=li.lei%40example.test&min_amount=20.50"),
        )
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.html);
    assert!(saved.html.contains("Saved."), "{}", saved.html);
    let stored = world
        .store
        .alert_preferences("W-CH001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            stored.target_kind.as_str(),
            stored.channels.clone(),
            stored.min_amount_minor
        ),
        ("wallet", vec!["email".to_owned()], 2_050)
    );
    assert_eq!(stored.email.as_deref(), Some("li.lei@example.test"));
    // The card's settings are untouched: the wallet's are its own.
    assert!(
        world
            .store
            .alert_preferences("card-CH001-D")
            .await
            .unwrap()
            .is_none()
    );
    // Shown again as saved, the threshold in yuan.
    let again = world.get("/wallet/alerts", Some(&session)).await;
    assert!(again.html.contains("value=\"20.50\""), "{}", again.html);
    assert!(again.html.contains("value=\"li.lei@example.test\""));

    // Only a cardholder with a wallet has the page.
    let manager = world
        .sign_in("shanghai.manager", "/console/login")
        .await
        .session();
    assert_eq!(
        world.get("/wallet/alerts", Some(&manager)).await.status,
        StatusCode::FORBIDDEN
    );
    let other = world
        .sign_in("cardholder2", "/console/login")
        .await
        .session();
    assert_eq!(
        world.get("/wallet/alerts", Some(&other)).await.status,
        StatusCode::NOT_FOUND
    );
}
