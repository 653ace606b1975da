//! The promise of R19 end to end, with the real binary: a merchant submits the online
//! application, is approved at once (low risk), a new terminal is activated with its one-time
//! code (receiving its parameters and its master key under the code's transport key), signs on
//! and makes its first approved sale; the code does not work twice; neither the code nor the
//! master key reaches the log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{http_json, run, start, temp_dir};
use serde_json::json;

#[test]
fn from_the_application_form_to_the_first_approved_sale() {
    let dir = temp_dir("onboarding", "journey");
    let mut running = start(&dir);
    let card_number = demo::with_luhn("621700000000000001");
    let form = json!({
        "business_name": "Jing'an Tea House",
        "credit_code": "91350100M000100Y43",
        "legal_name": "Chen Jing",
        "id_number": "11010519491231002X",
        "mobile": "+86 138 1234 5678",
        "address": "100 Yuyuan Road",
        "city": "Shanghai",
        "mcc": "5814",
        "settlement_card": card_number,
        "bank": "Huangpu Commercial Bank",
        "monthly_volume": "80000",
        "terminal_count": "1",
        "terminal_kind": "countertop",
        "consent": "on",
    });
    let (status, answer) = http_json(
        &running.web,
        "POST",
        "/onboarding/v1/applications",
        Some(&json!({ "form": form, "submit": true })),
    );
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["status"], "approved", "{answer}");
    let provisioned = &answer["provisioned"];
    let terminal_id = provisioned["terminal_ids"][0].as_str().unwrap().to_owned();
    let merchant_id = provisioned["merchant_id"].as_str().unwrap().to_owned();
    let code = provisioned["activation_codes"][0]["code"]
        .as_str()
        .unwrap()
        .to_owned();

    let issued = run(&dir, &["cards", "issue", "card-CH001-D"]);
    assert_eq!(issued.code, 0, "{}", issued.stderr);
    let url = running.web.trim_end_matches('/').to_owned();
    let activated = run(
        &dir,
        &[
            "terminal",
            "activate",
            "--code",
            &code,
            "--url",
            &url,
            "--config",
            "terminal.toml",
            "--json",
        ],
    );
    assert_eq!(
        activated.code, 0,
        "{}{}",
        activated.stdout, activated.stderr
    );
    assert_eq!(activated.json["terminal_id"], terminal_id.as_str());
    assert_eq!(activated.json["merchant_id"], merchant_id.as_str());
    assert_eq!(activated.json["signed_on"], true, "{}", activated.stdout);
    let config = std::fs::read_to_string(dir.join("terminal.toml")).unwrap();
    assert!(
        config.contains("Jing'an Tea House") && config.contains(&running.terminals.to_string())
    );
    let key = std::fs::read_to_string(dir.join("master.key")).unwrap();
    assert!(
        !activated.stdout.contains(key.trim()),
        "the key is not printed"
    );

    let sale = run(
        &dir,
        &[
            "terminal",
            "pay",
            "--config",
            "terminal.toml",
            "--json",
            "--method",
            "debit",
            "--card",
            "card-CH001-D.json",
            "--pin",
            "123456",
            "--amount",
            "12.34",
        ],
    );
    assert_eq!(sale.code, 0, "{}{}", sale.stdout, sale.stderr);
    assert_eq!(sale.json["approved"], true, "{}", sale.stdout);
    assert_eq!(sale.json["response_code"], "00", "{}", sale.stdout);

    // An operator changes the terminal's parameters; they reach it at its next sign-on.
    let bearer = operator_api_key(&dir);
    let (status, changed) = http_bearer(
        &running.web,
        &bearer,
        "PUT",
        &format!("/onboarding/v1/terminals/{terminal_id}/parameters"),
        &json!({
            "merchant_name": "Jing'an Tea House (Yuyuan)",
            "contactless_cvm_limit": "500.00",
            "payment_methods": ["chip", "contactless", "qr"],
        }),
    );
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["version"], 2, "{changed}");
    let signed_on = run(
        &dir,
        &["terminal", "sign-on", "--config", "terminal.toml", "--json"],
    );
    assert_eq!(
        signed_on.code, 0,
        "{}{}",
        signed_on.stdout, signed_on.stderr
    );
    assert_eq!(
        signed_on.json["parameters_version"], 2,
        "{}",
        signed_on.stdout
    );
    assert_eq!(
        signed_on.json["merchant_name"], "Jing'an Tea House (Yuyuan)",
        "{}",
        signed_on.stdout
    );
    let state = std::fs::read_to_string(
        dir.join(format!("terminal-{terminal_id}"))
            .join("state.json"),
    )
    .unwrap();
    assert!(state.contains("Jing'an Tea House (Yuyuan)"), "{state}");
    let sale = run(
        &dir,
        &[
            "terminal",
            "pay",
            "--config",
            "terminal.toml",
            "--json",
            "--method",
            "debit",
            "--card",
            "card-CH001-D.json",
            "--pin",
            "123456",
            "--amount",
            "8.00",
        ],
    );
    assert_eq!(
        sale.json["approved"], true,
        "{}{}",
        sale.stdout, sale.stderr
    );
    let reprint = run(
        &dir,
        &["terminal", "reprint", "--config", "terminal.toml", "--json"],
    );
    let receipt = reprint.json["receipt_text"].as_str().unwrap();
    assert!(receipt.contains("Jing'an Tea House (Yuyuan)"), "{receipt}");
    // Swiping is no longer allowed on this terminal.
    let swiped = run(
        &dir,
        &[
            "terminal",
            "pay",
            "--config",
            "terminal.toml",
            "--json",
            "--method",
            "debit",
            "--card",
            "card-CH001-D.json",
            "--pin",
            "123456",
            "--amount",
            "8.00",
            "--entry",
            "swipe",
            "--fallback",
        ],
    );
    assert_ne!(swiped.code, 0, "{}", swiped.stdout);
    assert!(
        format!("{}{}", swiped.stdout, swiped.stderr).contains("does not allow swipe"),
        "{}{}",
        swiped.stdout,
        swiped.stderr
    );

    // The code is good once.
    std::fs::create_dir_all(dir.join("second")).unwrap();
    let again = run(
        &dir,
        &[
            "terminal",
            "activate",
            "--code",
            &code,
            "--url",
            &url,
            "--config",
            "second/terminal.toml",
            "--json",
        ],
    );
    assert_eq!(again.code, 2, "{}{}", again.stdout, again.stderr);
    assert!(again.stderr.contains("used already"), "{}", again.stderr);
    assert!(!dir.join("second/terminal.toml").exists());

    // A forced key change to AES DUKPT: the new code brings an initial key derived from the
    // acquirer's base key inside the HSM, under the code's transport key; the terminal signs
    // on with DUKPT and sells.
    let (status, rekeyed) = http_bearer(
        &running.web,
        &bearer,
        "POST",
        &format!("/onboarding/v1/terminals/{terminal_id}/rekey"),
        &json!({"key_scheme": "dukpt-aes"}),
    );
    assert_eq!(status, 200, "{rekeyed}");
    let dukpt_code = rekeyed["code"].as_str().unwrap().to_owned();
    // The terminal is set up again in place (its state, trace numbers and batch, kept).
    std::fs::rename(dir.join("terminal.toml"), dir.join("terminal.toml.master")).unwrap();
    let activated = run(
        &dir,
        &[
            "terminal",
            "activate",
            "--code",
            &dukpt_code,
            "--url",
            &url,
            "--config",
            "terminal.toml",
            "--json",
        ],
    );
    assert_eq!(
        activated.code, 0,
        "{}{}",
        activated.stdout, activated.stderr
    );
    assert_eq!(activated.json["signed_on"], true, "{}", activated.stdout);
    let config = std::fs::read_to_string(dir.join("terminal.toml")).unwrap();
    assert!(config.contains("key_scheme = \"dukpt-aes\""), "{config}");
    assert!(config.contains("parameters_version = 2"), "{config}");
    let initial_key = std::fs::read_to_string(dir.join("master.key")).unwrap();
    assert!(!activated.stdout.contains(initial_key.trim()));
    let sale = run(
        &dir,
        &[
            "terminal",
            "pay",
            "--config",
            "terminal.toml",
            "--json",
            "--method",
            "debit",
            "--card",
            "card-CH001-D.json",
            "--pin",
            "123456",
            "--amount",
            "9.00",
        ],
    );
    assert_eq!(sale.code, 0, "{}{}", sale.stdout, sale.stderr);
    assert_eq!(sale.json["approved"], true, "{}", sale.stdout);

    running.stop();
    let log = std::fs::read_to_string(dir.join("easypos.log")).unwrap();
    assert!(
        !log.contains(initial_key.trim()),
        "no initial key in the log"
    );
    assert!(!log.contains(key.trim()), "no master key in the log");
    assert!(
        !log.contains(&code.replace('-', "")) && !log.contains(&code),
        "no activation code in the log"
    );
    assert!(
        !log.contains(&card_number),
        "no settlement card number in the log"
    );
}

/// An API key of the demo platform operator, written into the database as
/// `POST /api/v1/api-keys` would (the operator's second factor is the console's business).
fn operator_api_key(dir: &std::path::Path) -> String {
    let (issued, digest) = store::accounts::new_api_key("demo-operator", "parameters test", 0);
    let database = rusqlite::Connection::open(dir.join("easypos-data").join("easypos.db")).unwrap();
    database
        .execute(
            "INSERT INTO api_keys (id, user_id, name, secret_hash, created_at) VALUES (?1, ?2, ?3, ?4, 0)",
            rusqlite::params![issued.key.id, "demo-operator", "parameters test", digest.to_vec()],
        )
        .unwrap();
    issued.secret
}

/// One exchange with `Authorization: Bearer`: status and JSON body.
fn http_bearer(
    web: &str,
    key: &str,
    method: &str,
    path: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    use std::io::{Read, Write};
    let address = web.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let body = body.to_string();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}
