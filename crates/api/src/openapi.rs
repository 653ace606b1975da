//! The OpenAPI 3.1 document of the API, written by hand (no code generator to build on two
//! cores) and kept honest by tests: its paths and methods must be exactly [`crate::ROUTES`],
//! every route of the router must answer, and a snapshot catches unreviewed changes.

use axum::Json;
use serde_json::{Value, json};

pub async fn serve() -> Json<Value> {
    Json(document())
}

fn problem_responses(extra: &[(&str, &str)]) -> Value {
    let mut responses = serde_json::Map::new();
    for (status, description) in [
        (
            "401",
            "Not authenticated (no, wrong or revoked credentials; locked account)",
        ),
        ("403", "The caller's role may not use this route"),
    ]
    .iter()
    .chain(extra)
    {
        responses.insert(
            (*status).to_owned(),
            json!({
                "description": description,
                "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
            }),
        );
    }
    Value::Object(responses)
}

fn ok(schema: &str) -> Value {
    json!({
        "description": "OK",
        "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}
    })
}

fn page(item: &str) -> Value {
    json!({
        "type": "object",
        "required": ["data", "next_cursor"],
        "properties": {
            "data": {"type": "array", "items": {"$ref": format!("#/components/schemas/{item}")}},
            "next_cursor": {"type": ["string", "null"], "description": "Give as `cursor` for the next page; null on the last page."}
        }
    })
}

fn operation(
    id: &str,
    summary: &str,
    success: (&str, Value),
    parameters: Value,
    extra: &[(&str, &str)],
) -> Value {
    let mut responses = problem_responses(extra);
    if let Value::Object(map) = &mut responses {
        map.insert(success.0.to_owned(), success.1);
    }
    json!({
        "operationId": id,
        "summary": summary,
        "parameters": parameters,
        "responses": responses,
    })
}

/// A POST on a case, with its JSON body and an `Idempotency-Key`.
fn case_post(
    id: &str,
    summary: &str,
    body: &str,
    success: (&str, Value),
    extra: &[(&str, &str)],
) -> Value {
    let mut parameters = path_id("The case number");
    if let Value::Array(list) = &mut parameters {
        list.push(json!({
            "name": "Idempotency-Key", "in": "header", "required": true,
            "schema": {"type": "string"}, "description": "A unique key per request: a retry with the same key gets the first answer"
        }));
    }
    let mut operation = operation(id, summary, success, parameters, extra);
    if let Value::Object(map) = &mut operation {
        map.insert(
            "requestBody".to_owned(),
            json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{body}")}}}}),
        );
    }
    operation
}

fn path_id(description: &str) -> Value {
    json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}, "description": description}])
}

fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "schema": schema, "description": description})
}

/// The whole document: the routes written in one literal, then those added since.
pub fn document() -> Value {
    let mut document = base_document();
    add_refunds(&mut document);
    add_disputes(&mut document);
    add_alerts(&mut document);
    add_incidents(&mut document);
    add_emergency(&mut document);
    add_fraud_documents(&mut document);
    add_wallet_alerts(&mut document);
    add_procedures(&mut document);
    document
}

fn base_document() -> Value {
    let not_found = [(
        "404",
        "No such record that the caller may see (another tenant's records are not found either)",
    )];
    let bad = [("400", "A parameter is malformed; `detail` names it")];
    let post_errors = [
        ("400", "Missing Idempotency-Key, or a malformed body"),
        (
            "409",
            "A request with this Idempotency-Key is still running",
        ),
        ("413", "Body larger than 64 KiB"),
        (
            "422",
            "This Idempotency-Key was used for another request in the last 24 hours",
        ),
    ];
    let transaction_query = json!([
        query(
            "from",
            "Received at or after (RFC 3339, or a date for midnight UTC)",
            json!({"type": "string", "format": "date-time"})
        ),
        query(
            "to",
            "Received before (RFC 3339, or a date)",
            json!({"type": "string", "format": "date-time"})
        ),
        query(
            "min_amount_minor",
            "Smallest amount, in minor units",
            json!({"type": "integer"})
        ),
        query(
            "max_amount_minor",
            "Largest amount, in minor units",
            json!({"type": "integer"})
        ),
        query(
            "merchant_id",
            "Merchant id (MID)",
            json!({"type": "string"})
        ),
        query(
            "terminal_id",
            "Terminal id (TID)",
            json!({"type": "string"})
        ),
        query(
            "card",
            "Masked card number (first six and last four digits, e.g. 622202******1234) or card id (token)",
            json!({"type": "string"})
        ),
        query(
            "status",
            "approved (field 39 = 00), declined, or unanswered",
            json!({"type": "string", "enum": ["approved", "declined", "unanswered"]})
        ),
        query(
            "limit",
            "Page size, 1 to 200 (default 50)",
            json!({"type": "integer", "minimum": 1, "maximum": 200})
        ),
        query(
            "cursor",
            "`next_cursor` of the previous page",
            json!({"type": "string"})
        ),
    ]);
    let idempotency_header = json!([{
        "name": "Idempotency-Key", "in": "header", "required": true,
        "schema": {"type": "string", "minLength": 1, "maxLength": 255},
        "description": "A fresh key (e.g. a UUID) per operation; a retry with the same key and body gets the original answer."
    }]);
    let amount = json!({
        "type": ["object", "null"],
        "required": ["minor", "currency", "major"],
        "properties": {
            "minor": {"type": "integer", "description": "Minor units (fen, cents)"},
            "currency": {"type": "string", "description": "ISO 4217 alphabetic code"},
            "major": {"type": "string", "description": "Major units as text, e.g. 12.34"}
        }
    });
    let mut create_webhook_responses = problem_responses(&[
        post_errors[0],
        post_errors[1],
        post_errors[2],
        post_errors[3],
        ("503", "Webhooks are off in this installation"),
    ]);
    if let Value::Object(map) = &mut create_webhook_responses {
        map.insert("201".into(), json!({"description": "Created", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CreatedWebhook"}}}}));
    }
    let mut redeliver_responses =
        problem_responses(&[not_found[0], post_errors[0], post_errors[1], post_errors[3]]);
    if let Value::Object(map) = &mut redeliver_responses {
        map.insert(
            "202".into(),
            json!({"description": "Queued for delivery now, retried for 24 hours"}),
        );
    }
    let webhook_path = path_id("Webhook id (wh_…)");
    let freeze_path = json!([
        {"name": "scope", "in": "path", "required": true, "schema": {"type": "string", "enum": ["terminal", "merchant", "card", "refunds"]}, "description": "What is frozen"},
        {"name": "target", "in": "path", "required": true, "schema": {"type": "string"}, "description": "Terminal id, merchant id or card id"}
    ]);
    let mut delivery_path = webhook_path.clone();
    if let Value::Array(parameters) = &mut delivery_path {
        parameters.push(json!({"name": "delivery_id", "in": "path", "required": true, "schema": {"type": "string"}, "description": "Delivery id"}));
        parameters.push(idempotency_header[0].clone());
    }
    let mut create_key_responses = problem_responses(&post_errors);
    if let Value::Object(map) = &mut create_key_responses {
        map.insert("201".into(), json!({"description": "Created", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CreatedApiKey"}}}}));
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "easypos API",
            "version": "1",
            "description": "Transactions, merchants, terminals and cards of easypos, by role and tenant. See docs/api.md."
        },
        "servers": [{"url": "/"}],
        "security": [{"apiKey": []}, {"basic": []}],
        "paths": {
            "/api/v1/me": {"get": operation("getMe", "The caller: user, role and tenant", ("200", ok("Me")), json!([]), &[])},
            "/api/v1/transactions": {"get": operation("listTransactions", "Transactions the caller may see, newest first", ("200", ok("TransactionPage")), transaction_query, &bad)},
            "/api/v1/transactions/{id}": {"get": operation("getTransaction", "One transaction", ("200", ok("Transaction")), path_id("Transaction id"), &not_found)},
            "/api/v1/statements/{month}": {"get": {
                "operationId": "getStatement",
                "summary": "A month's transactions (Asia/Shanghai calendar month) as CSV, oldest first, within the caller's tenant (docs/aftersale.md)",
                "parameters": [
                    {"name": "month", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"}, "description": "YYYY-MM"},
                    query("card", "Masked card number or card id: one of the caller's cards", json!({"type": "string"})),
                    query("merchant_id", "Merchant id (MID), for callers that see several", json!({"type": "string"}))
                ],
                "responses": operation("getStatement", "", ("200", json!({"description": "CSV: time_local, merchant_id, merchant_name, merchant_city, mcc, category, terminal_id, card, transaction, status, response_code, amount, currency, rrn, auth_code", "content": {"text/csv": {"schema": {"type": "string"}}}})), json!([]), &bad)["responses"].clone()
            }},
            "/api/v1/transactions/{id}/fraud-report": {"post": {
                "operationId": "reportFraud",
                "summary": "The cardholder reports their transaction as fraud: the card is frozen (declined 62 from the next authorization) and an evidence pack is sealed; 200 with the earlier report when it was reported already (docs/aftersale.md)",
                "parameters": [path_id("Transaction id")[0].clone(), idempotency_header[0].clone()],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewFraudReport"}}}},
                "responses": operation("reportFraud", "", ("201", ok("FraudReport")), json!([]), &not_found)["responses"].clone()
            }},
            "/api/v1/fraud-reports/{id}": {"get": operation("getFraudReport", "A fraud report: its reporter, the acquirer's operators and the card's issuer see it", ("200", ok("FraudReport")), path_id("Fraud report id (fr_…)"), &not_found)},
            "/api/v1/fraud-reports/{id}/pack": {"get": operation("getEvidencePack", "The evidence pack, byte for byte as sealed (its SHA-256 in X-Pack-Sha256): format, manifest (name, sha256, bytes of each file) and files", ("200", json!({"description": "The pack", "content": {"application/json": {"schema": {"type": "object"}}}})), path_id("Fraud report id (fr_…)"), &not_found)},
            "/api/v1/transactions/{id}/timeline": {"get": operation("getTransactionTimeline", "What happened to a transaction, oldest first: authorized or declined, voided, refunded, completed, reversed, settled (docs/aftersale.md)", ("200", ok("TimelinePage")), path_id("Transaction id"), &not_found)},
            "/api/v1/merchants": {"get": operation("listMerchants", "Merchants the caller may see", ("200", ok("MerchantPage")), json!([]), &[])},
            "/api/v1/merchants/{id}": {"get": operation("getMerchant", "One merchant", ("200", ok("Merchant")), path_id("Merchant id (MID)"), &not_found)},
            "/api/v1/terminals": {"get": operation("listTerminals", "Terminals the caller may see", ("200", ok("TerminalPage")), json!([query("merchant_id", "Only this merchant's terminals", json!({"type": "string"}))]), &bad)},
            "/api/v1/terminals/{id}": {"get": operation("getTerminal", "One terminal", ("200", ok("Terminal")), path_id("Terminal id (TID)"), &not_found)},
            "/api/v1/cards": {"get": operation("listCards", "Cards the caller may see, with balances", ("200", ok("CardPage")), json!([]), &[])},
            "/api/v1/cards/{id}": {"get": operation("getCard", "One card with its balance", ("200", ok("Card")), path_id("Card id (token)"), &not_found)},
            "/api/v1/api-keys": {
                "get": operation("listApiKeys", "The caller's API keys (never their secrets)", ("200", ok("ApiKeyPage")), json!([]), &[]),
                "post": {
                    "operationId": "createApiKey",
                    "summary": "Create an API key; the answer is the only time its secret is shown",
                    "parameters": idempotency_header,
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewApiKey"}}}},
                    "responses": create_key_responses
                }
            },
            "/api/v1/api-keys/{id}": {"delete": operation("revokeApiKey", "Revoke one of the caller's API keys", ("204", json!({"description": "Revoked"})), path_id("API key id (ek_…)"), &not_found)},
            "/api/v1/webhooks": {
                "get": operation("listWebhooks", "The webhooks of the caller's tenant", ("200", ok("WebhookPage")), json!([]), &[]),
                "post": {
                    "operationId": "createWebhook",
                    "summary": "Subscribe a URL to the events the caller may see; the answer is the only time its signing secret is shown",
                    "parameters": idempotency_header,
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewWebhook"}}}},
                    "responses": create_webhook_responses
                }
            },
            "/api/v1/webhooks/{id}": {"delete": operation("disableWebhook", "Stop a webhook of the caller's tenant", ("204", json!({"description": "Stopped"})), webhook_path.clone(), &not_found)},
            "/api/v1/webhooks/{id}/deliveries": {"get": operation("listDeliveries", "A webhook's delivery log, newest first (at most 100)", ("200", ok("DeliveryPage")), webhook_path, &not_found)},
            "/api/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver": {"post": {
                "operationId": "redeliver",
                "summary": "Send a delivery again, now, and retry it for 24 hours",
                "parameters": delivery_path,
                "responses": redeliver_responses
            }},
            "/api/v1/freezes": {"get": operation("listFreezes", "The emergency freezes the caller may see (docs/risk.md)", ("200", ok("FreezePage")), json!([]), &[])},
            "/api/v1/freezes/{scope}/{target}": {
                "put": {
                    "operationId": "freeze",
                    "summary": "Freeze a terminal or merchant (its next authorization is declined 58) or a card (62)",
                    "parameters": freeze_path.clone(),
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewFreeze"}}}},
                    "responses": operation("freeze", "", ("200", ok("Freeze")), json!([]), &not_found)["responses"].clone()
                },
                "delete": operation("thaw", "Lift a freeze (204 whether or not there was one)", ("204", json!({"description": "Thawed"})), freeze_path, &not_found)
            },
            "/api/v1/receipts/verify": {
                "post": {
                    "operationId": "verifyReceipt",
                    "summary": "Check a receipt's QR payload against the acquirer's signature (public: no login, no Idempotency-Key; docs/aftersale.md)",
                    "security": [],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/VerifyReceipt"}}}},
                    "responses": {
                        "200": ok("VerifiedReceipt"),
                        "400": {"description": "The body is not {\"payload\": \"…\"}", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
                        "422": {"description": "Not genuine: malformed, altered, or signed by a key that is not the acquirer's (`receipt-not-genuine`; `detail` says which)", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
                    }
                }
            },
            "/api/v1/receipts/keys": {
                "get": {
                    "operationId": "listReceiptKeys",
                    "summary": "The acquirer's receipt signing public keys, retired ones included (public), to verify receipts offline",
                    "security": [],
                    "responses": {"200": ok("ReceiptKeyPage")}
                }
            },
            "/api/v1/receipts/keys/rotate": {
                "post": {
                    "operationId": "rotateReceiptKey",
                    "summary": "Make a new receipt signing key in the HSM; the old one is retired and still verifies its receipts (platform operators)",
                    "parameters": idempotency_header.clone(),
                    "responses": operation("rotateReceiptKey", "", ("201", ok("ReceiptKey")), json!([]), &post_errors)["responses"].clone()
                }
            },
            "/api/v1/audit": {"get": operation("listAudit", "Audit log entries, oldest first: operators their institution's and its merchants', a merchant's admin and manager their merchant's (docs/audit.md)", ("200", ok("AuditPage")), json!([
                query("cursor", "The next_cursor of the previous page", json!({"type": "string"})),
                query("limit", "Entries per page, 1 to 1000 (default 100)", json!({"type": "string"})),
                query("actor", "Only this user's actions", json!({"type": "string"})),
                query("action", "Only actions starting with this, e.g. freeze.", json!({"type": "string"})),
                query("target", "Only actions on this target, e.g. terminal:T0000001", json!({"type": "string"}))
            ]), &[])},
            "/api/v1/audit/verify": {"get": operation("verifyAudit", "Walk the hash chain and report the first break (operators)", ("200", ok("AuditVerification")), json!([]), &[])},
            "/api/v1/cases": {"get": operation("listCases", "Cases the risk rules opened, newest first: an operator's merchants', a merchant admin's or manager's own (docs/risk.md)", ("200", ok("CasePage")), json!([query("status", "open or resolved", json!({"type": "string", "enum": ["open", "resolved"]}))]), &[])},
            "/api/v1/cases/{id}": {"get": operation("getCase", "A case with its comments", ("200", ok("CaseDetail")), path_id("The case number"), &not_found)},
            "/api/v1/cases/{id}/assign": {"post": case_post("assignCase", "Assign an open case to a user who may work it", "Assignment", ("200", ok("CaseDetail")), &not_found)},
            "/api/v1/cases/{id}/comments": {"post": case_post("commentCase", "Add a comment to a case", "NewComment", ("201", ok("CaseDetail")), &not_found)},
            "/api/v1/cases/{id}/resolve": {"post": case_post("resolveCase", "Resolve an open case; block_card (operators), block_terminal and block_merchant freeze at once", "Resolution", ("200", ok("CaseDetail")), &not_found)},
            "/api/v1/audit/anchors": {
                "get": operation("listAuditAnchors", "Signed anchors of the audit chain's head, oldest first (operators; docs/audit.md#anchors)", ("200", json!({"description": "OK", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/AuditAnchor"}}}}})), json!([]), &[]),
                "post": {
                    "operationId": "anchorAudit",
                    "summary": "Sign the chain's head now with the platform's anchor key in the HSM (operators); the existing anchor when the head is anchored already, 409 when the log is empty",
                    "parameters": idempotency_header.clone(),
                    "responses": operation("anchorAudit", "", ("201", ok("AuditAnchor")), json!([]), &post_errors)["responses"].clone()
                }
            },
            "/api/v1/risk/rules": {"get": operation("getRiskRules", "The risk rules version in force, its TOML and its diff from the one before (operators; docs/risk.md#editing-the-rules)", ("200", ok("RiskRulesVersion")), json!([]), &not_found)},
            "/api/v1/risk/rules/versions": {
                "get": operation("listRiskRulesVersions", "The newest 50 risk rules versions, newest first (operators)", ("200", json!({"description": "OK", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/RiskRulesVersion"}}}}})), json!([]), &[]),
                "post": {
                    "operationId": "saveRiskRules",
                    "summary": "Save a new version of the risk rules (operators); in force on every host within 2 s. 422 names the setting a refused file gets wrong (nothing changes); 409 when based_on is not the newest version",
                    "parameters": idempotency_header.clone(),
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewRiskRulesVersion"}}}},
                    "responses": operation("saveRiskRules", "", ("201", ok("RiskRulesVersion")), json!([]), &post_errors)["responses"].clone()
                }
            },
            "/api/v1/risk/rules/versions/{version}/rollback": {
                "post": {
                    "operationId": "rollbackRiskRules",
                    "summary": "Save an earlier version's rules again as the newest version (operators)",
                    "parameters": [
                        {"name": "version", "in": "path", "required": true, "schema": {"type": "string"}, "description": "The version to return to"},
                        {"name": "Idempotency-Key", "in": "header", "required": true, "schema": {"type": "string"}, "description": "A unique key per request: a retry with the same key gets the first answer"}
                    ],
                    "requestBody": {"required": false, "content": {"application/json": {"schema": {"type": "object", "additionalProperties": false, "properties": {"note": {"type": "string", "description": "Why, at most 500 characters"}}}}}},
                    "responses": operation("rollbackRiskRules", "", ("201", ok("RiskRulesVersion")), json!([]), &post_errors)["responses"].clone()
                }
            }
        },
        "components": {
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer", "description": "An API key: ek_<id>_<secret>"},
                "basic": {"type": "http", "scheme": "basic", "description": "User name and password (counts towards the lockout)"}
            },
            "schemas": {
                "Problem": {
                    "type": "object",
                    "description": "RFC 9457 problem details",
                    "required": ["type", "title", "status", "detail"],
                    "properties": {
                        "type": {"type": "string", "description": "/api/problems#<kind>; the kinds are listed in docs/api.md"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string", "description": "What went wrong and what to do about it"}
                    }
                },
                "Amount": amount,
                "Me": {
                    "type": "object",
                    "required": ["id", "username", "display_name", "role", "tenant"],
                    "properties": {
                        "id": {"type": "string"}, "username": {"type": "string"}, "display_name": {"type": "string"},
                        "role": {"type": "string", "enum": ["platform_operator", "issuer_operator", "wallet_operator", "merchant_admin", "merchant_manager", "cashier", "cardholder", "channel_partner"]},
                        "tenant": {"type": "object", "required": ["kind", "id"], "properties": {"kind": {"type": "string", "enum": ["institution", "merchant", "cardholder", "partner"]}, "id": {"type": "string"}}}
                    }
                },
                "Transaction": {
                    "type": "object",
                    "required": ["id", "received_at", "kind", "mti", "merchant_id", "terminal_id", "status", "duration_us"],
                    "properties": {
                        "id": {"type": "string"},
                        "received_at": {"type": "string", "format": "date-time"},
                        "kind": {"type": "string", "description": "Sale, SaleVoid, Refund, PreAuthorization, PreAuthorizationVoid, PreAuthorizationCompletion, CompletionVoid, Reversal or BalanceInquiry"},
                        "mti": {"type": "string"},
                        "merchant_id": {"type": "string"},
                        "terminal_id": {"type": "string"},
                        "amount": {"$ref": "#/components/schemas/Amount"},
                        "card": {"type": ["string", "null"], "description": "Masked: first six and last four digits at most"},
                        "status": {"type": "string", "enum": ["approved", "declined", "unanswered"]},
                        "response_code": {"type": ["string", "null"], "description": "ISO 8583 field 39"},
                        "risk_rules": {"type": ["string", "null"], "description": "The risk rules that fired, name(action,score): reason; … — or the freeze that stopped it (docs/risk.md)"},
                        "rrn": {"type": ["string", "null"]},
                        "auth_code": {"type": ["string", "null"]},
                        "batch": {"type": ["integer", "null"]},
                        "stan": {"type": ["integer", "null"]},
                        "original_batch": {"type": ["integer", "null"]},
                        "original_stan": {"type": ["integer", "null"]},
                        "duration_us": {"type": "integer"}
                    }
                },
                "TransactionPage": page("Transaction"),
                "Merchant": {
                    "type": "object",
                    "required": ["id", "name", "name_zh", "city", "mcc"],
                    "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "name_zh": {"type": "string"}, "city": {"type": "string"}, "mcc": {"type": "string"}}
                },
                "MerchantPage": page("Merchant"),
                "Terminal": {
                    "type": "object",
                    "required": ["id", "merchant_id", "status"],
                    "properties": {"id": {"type": "string"}, "merchant_id": {"type": "string"}, "status": {"type": "string", "enum": ["active", "inactive", "frozen"]}}
                },
                "TerminalPage": page("Terminal"),
                "Card": {
                    "type": "object",
                    "required": ["id", "masked_pan", "product", "issuer_id", "expiry"],
                    "properties": {
                        "id": {"type": "string"},
                        "masked_pan": {"type": "string"},
                        "product": {"type": "string", "enum": ["debit", "credit"]},
                        "issuer_id": {"type": "integer"},
                        "expiry": {"type": "string", "description": "YYMM"},
                        "balance": {"$ref": "#/components/schemas/Amount"},
                        "available": {"$ref": "#/components/schemas/Amount"}
                    }
                },
                "CardPage": page("Card"),
                "ApiKey": {
                    "type": "object",
                    "required": ["id", "name", "created_at"],
                    "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "created_at": {"type": "string", "format": "date-time"}, "revoked_at": {"type": ["string", "null"], "format": "date-time"}}
                },
                "ApiKeyPage": page("ApiKey"),
                "NewWebhook": {"type": "object", "required": ["url"], "additionalProperties": false, "properties": {"url": {"type": "string", "maxLength": 2048, "description": "http:// URL of the receiver"}}},
                "Webhook": {
                    "type": "object",
                    "required": ["id", "url", "owner", "created_at"],
                    "properties": {"id": {"type": "string"}, "url": {"type": "string"}, "owner": {"type": "string", "description": "User name of who subscribed: events are what that user may see"}, "created_at": {"type": "string", "format": "date-time"}}
                },
                "WebhookPage": page("Webhook"),
                "Freeze": {
                    "type": "object",
                    "required": ["scope", "target", "reason", "frozen_by", "frozen_at"],
                    "properties": {"scope": {"type": "string", "enum": ["terminal", "merchant", "card", "refunds"]}, "target": {"type": "string"}, "reason": {"type": "string"}, "frozen_by": {"type": "string", "description": "User name of who froze it"}, "frozen_at": {"type": "string", "format": "date-time"}}
                },
                "FreezePage": page("Freeze"),
                "VerifyReceipt": {
                    "type": "object",
                    "required": ["payload"],
                    "additionalProperties": false,
                    "properties": {"payload": {"type": "string", "description": "The text of the receipt's QR code: EPR1|RRN|TID|MID|card|amount|currency|time|auth code|key id|signature, or EPR2|…|key id|proof|signature for a receipt signed in a batch (docs/aftersale.md)"}}
                },
                "VerifiedReceipt": {
                    "type": "object",
                    "required": ["genuine", "rrn", "terminal_id", "merchant_id", "card", "amount", "time", "auth_code", "key_id", "key_retired_at"],
                    "properties": {
                        "genuine": {"type": "boolean", "description": "Always true: a receipt that is not genuine is a 422 problem"},
                        "rrn": {"type": "string"}, "terminal_id": {"type": "string"}, "merchant_id": {"type": "string"},
                        "card": {"type": "string", "description": "First six and last four digits"},
                        "amount": {"$ref": "#/components/schemas/Amount"},
                        "time": {"type": "string", "format": "date-time", "description": "When the acquirer approved it (UTC)"},
                        "auth_code": {"type": "string"}, "key_id": {"type": "string"},
                        "key_retired_at": {"type": ["string", "null"], "format": "date-time", "description": "When the signing key was rotated out; the receipt is still genuine"}
                    }
                },
                "ReceiptKey": {
                    "type": "object",
                    "required": ["key_id", "algorithm", "public_key", "created_at", "retired_at"],
                    "properties": {"key_id": {"type": "string", "description": "First 4 bytes of SHA-256 of the public key, hex"}, "algorithm": {"type": "string", "enum": ["Ed25519"]}, "public_key": {"type": "string", "description": "32 bytes, hex"}, "created_at": {"type": "string", "format": "date-time"}, "retired_at": {"type": ["string", "null"], "format": "date-time"}}
                },
                "ReceiptKeyPage": page("ReceiptKey"),
                "TimelineEvent": {
                    "type": "object",
                    "required": ["state", "at", "amount", "message"],
                    "properties": {
                        "state": {"type": "string", "enum": ["authorized", "declined", "voided", "refunded", "completed", "reversed", "settled", "reported-as-fraud", "refund-requested", "refund-declined", "disputed", "charged-back", "dispute-rejected", "dispute-answered", "chargeback-final", "chargeback-reversed"]},
                        "at": {"type": "string", "format": "date-time", "description": "When the host received the message that made it so"},
                        "amount": amount.clone(),
                        "message": {"type": "string", "description": "The message's kind and field 39, e.g. Refund 00"}
                    }
                },
                "TimelinePage": page("TimelineEvent"),
                "NewFraudReport": {
                    "type": "object",
                    "required": ["description"],
                    "additionalProperties": false,
                    "properties": {"description": {"type": "string", "description": "What happened, 1 to 2000 characters"}}
                },
                "FraudReport": {
                    "type": "object",
                    "required": ["id", "transaction_id", "card_id", "card_frozen", "reported_by", "reported_at", "description", "pack_sha256", "pack_url", "pdf_url", "manifest_url", "follow_ups"],
                    "properties": {
                        "id": {"type": "string"}, "transaction_id": {"type": "string"}, "card_id": {"type": "string"},
                        "card_frozen": {"type": "boolean"}, "reported_by": {"type": "string"},
                        "reported_at": {"type": "string", "format": "date-time"}, "description": {"type": "string"},
                        "pack_sha256": {"type": "string", "description": "SHA-256 of the evidence pack as sealed, hex"},
                        "pack_url": {"type": "string"},
                        "pdf_url": {"type": "string", "description": "The pack's PDF (also in the pack as evidence.pdf)"},
                        "manifest_url": {"type": "string", "description": "Every file's SHA-256, the PDF's and the pack's, as sha256sum -c reads them"},
                        "follow_ups": {"type": "array", "description": "What the report set in motion, in order, each retried in the background until done (empty for reports made before they were kept)", "items": {"$ref": "#/components/schemas/FraudFollowUp"}}
                    }
                },
                "FraudFollowUp": {
                    "type": "object",
                    "required": ["step", "state", "attempts", "last_error", "next_attempt_at", "outcome", "done_at"],
                    "properties": {
                        "step": {"type": "string", "enum": ["case", "notify", "dispute"], "description": "case: the review case; notify: the fraud_report.opened webhooks (after the case); dispute: the transaction's dispute"},
                        "state": {"type": "string", "enum": ["pending", "done"]},
                        "attempts": {"type": "integer"},
                        "last_error": {"type": "string", "description": "Why the last try failed, while pending"},
                        "next_attempt_at": {"type": ["string", "null"], "format": "date-time", "description": "When it is tried next, while pending"},
                        "outcome": {"type": "string", "description": "What it made, once done"},
                        "done_at": {"type": ["string", "null"], "format": "date-time"}
                    }
                },
                "AuditEntry": {
                    "type": "object",
                    "required": ["seq", "at", "actor", "action", "target", "detail", "tenant", "prev_hash", "hash"],
                    "properties": {
                        "seq": {"type": "integer", "description": "1, 2, 3 … without gaps"},
                        "at": {"type": "integer", "description": "Unix seconds"},
                        "actor": {"type": "string"}, "action": {"type": "string"}, "target": {"type": "string"},
                        "detail": {"type": "string"}, "tenant": {"type": "string", "description": "kind:id of whose records the action touched"},
                        "prev_hash": {"type": "string", "description": "hash of entry seq-1 (64 zeros for the first)"},
                        "hash": {"type": "string", "description": "SHA-256, hex (docs/audit.md)"}
                    }
                },
                "AuditPage": page("AuditEntry"),
                "Case": {
                    "type": "object",
                    "required": ["id", "opened_at", "last_at", "hits", "merchant_id", "terminal_id", "card", "rules", "severity", "status", "assignee", "outcome", "resolved_by", "resolved_at"],
                    "properties": {
                        "id": {"type": "integer"}, "opened_at": {"type": "integer", "description": "Unix seconds"}, "last_at": {"type": "integer"},
                        "hits": {"type": "integer", "description": "Times the same rules fired for the same merchant, terminal and card while open"},
                        "merchant_id": {"type": "string"}, "terminal_id": {"type": "string"}, "card": {"type": "string", "description": "The card, masked (first six, last four); empty when none"},
                        "rules": {"type": "string", "description": "name(action,score): reason; …"},
                        "severity": {"type": "string", "enum": ["alert", "review", "decline"]},
                        "status": {"type": "string", "enum": ["open", "resolved"]},
                        "assignee": {"type": "string"}, "outcome": {"type": "string", "enum": ["", "no_action", "block_card", "block_terminal", "block_merchant"]},
                        "resolved_by": {"type": "string"}, "resolved_at": {"type": ["integer", "null"]}
                    }
                },
                "CasePage": page("Case"),
                "CaseDetail": {"allOf": [{"$ref": "#/components/schemas/Case"}, {"type": "object", "required": ["comments"], "properties": {"comments": {"type": "array", "items": {"type": "object", "required": ["seq", "at", "author", "text"], "properties": {"seq": {"type": "integer"}, "at": {"type": "integer"}, "author": {"type": "string"}, "text": {"type": "string"}}}}}}]},
                "Assignment": {"type": "object", "required": ["assignee"], "additionalProperties": false, "properties": {"assignee": {"type": "string", "description": "User name"}}},
                "NewComment": {"type": "object", "required": ["text"], "additionalProperties": false, "properties": {"text": {"type": "string", "description": "1 to 2000 characters"}}},
                "Resolution": {"type": "object", "required": ["outcome", "reason"], "additionalProperties": false, "properties": {"outcome": {"type": "string", "enum": ["no_action", "block_card", "block_terminal", "block_merchant"]}, "reason": {"type": "string", "description": "1 to 2000 characters"}}},
                "RiskRulesVersion": {
                    "type": "object",
                    "required": ["version", "toml", "saved_by", "saved_at", "note", "rules", "diff"],
                    "properties": {
                        "version": {"type": "integer"}, "toml": {"type": "string", "description": "The whole rules file (docs/risk.md)"},
                        "saved_by": {"type": "string"}, "saved_at": {"type": "integer", "description": "Unix seconds"}, "note": {"type": "string"},
                        "rules": {"type": "integer", "description": "Rules evaluated (enabled)"},
                        "diff": {"type": "string", "description": "Lines removed (- ) and added (+ ) against the version before"}
                    }
                },
                "NewRiskRulesVersion": {
                    "type": "object",
                    "required": ["based_on", "toml"],
                    "additionalProperties": false,
                    "properties": {
                        "based_on": {"type": "integer", "description": "The version the edit started from (0 for the first)"},
                        "toml": {"type": "string", "description": "The whole rules file, at most 65536 bytes"},
                        "note": {"type": "string", "description": "Why, at most 500 characters"}
                    }
                },
                "AuditAnchor": {
                    "type": "object",
                    "required": ["seq", "hash", "at", "key_id", "signature"],
                    "properties": {
                        "seq": {"type": "integer", "description": "The entry whose hash is signed"}, "hash": {"type": "string", "description": "That entry's hash, hex"},
                        "at": {"type": "integer", "description": "Unix seconds"}, "key_id": {"type": "string", "description": "First 4 bytes of SHA-256 of the anchor key's public key, hex"},
                        "signature": {"type": "string", "description": "Ed25519 over easypos-audit-anchor-v1, seq, hash, at and key_id, one per line; 64 bytes, hex"}
                    }
                },
                "AuditVerification": {
                    "type": "object",
                    "required": ["entries", "head_seq", "head_hash", "anchors", "anchored_seq", "first_break"],
                    "properties": {
                        "entries": {"type": "integer"}, "head_seq": {"type": "integer"}, "head_hash": {"type": "string"},
                        "anchors": {"type": "integer", "description": "Signed anchors verified and reached by the intact chain"},
                        "anchored_seq": {"type": "integer", "description": "The highest entry an anchor vouches for"},
                        "first_break": {"oneOf": [{"type": "null"}, {"type": "object", "required": ["seq", "problem"], "properties": {"seq": {"type": "integer"}, "problem": {"type": "string"}}}]}
                    }
                },
                "NewFreeze": {
                    "type": "object",
                    "required": ["reason"],
                    "additionalProperties": false,
                    "properties": {"reason": {"type": "string", "description": "Why, in 1 to 500 characters"}}
                },
                "CreatedWebhook": {
                    "allOf": [{"$ref": "#/components/schemas/Webhook"}, {"type": "object", "required": ["secret"], "properties": {"secret": {"type": "string", "description": "whsec_…: the key of Easypos-Signature's HMAC-SHA256; shown only now"}}}]
                },
                "Delivery": {
                    "type": "object",
                    "required": ["id", "event_id", "event_type", "state", "attempts", "created_at", "payload"],
                    "properties": {
                        "id": {"type": "string"},
                        "event_id": {"type": "string"},
                        "event_type": {"type": "string", "enum": ["transaction.created"]},
                        "state": {"type": "string", "enum": ["pending", "delivered", "failed"]},
                        "attempts": {"type": "integer"},
                        "created_at": {"type": "string", "format": "date-time"},
                        "next_attempt_at": {"type": ["string", "null"], "format": "date-time"},
                        "last_status": {"type": ["integer", "null"]},
                        "last_error": {"type": ["string", "null"]},
                        "delivered_at": {"type": ["string", "null"], "format": "date-time"},
                        "payload": {"type": "object", "description": "The event as sent: id, type, created_at, data (a Transaction)"}
                    }
                },
                "DeliveryPage": page("Delivery"),
                "NewApiKey": {"type": "object", "required": ["name"], "additionalProperties": false, "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 64}}},
                "CreatedApiKey": {
                    "allOf": [{"$ref": "#/components/schemas/ApiKey"}, {"type": "object", "required": ["secret"], "properties": {"secret": {"type": "string", "description": "The whole key; shown only now"}}}]
                }
            }
        }
    })
}

/// Refunds (issue 9, docs/aftersale.md): their paths and schemas.
fn add_refunds(document: &mut Value) {
    let not_found = (
        "404",
        "No such record that the caller may see (another tenant's records are not found either)",
    );
    let refund_errors = [
        (
            "400",
            "Missing Idempotency-Key, or a malformed body; `detail` names the field",
        ),
        not_found,
        (
            "409",
            "The refund is not in a state that allows this (`refund-state`), or a request with this Idempotency-Key is still running",
        ),
        (
            "422",
            "Not refundable (`not-refundable`: declined, voided or reversed), more than is left to refund (`refund-exceeds-captured`), or an Idempotency-Key used for another request",
        ),
        (
            "503",
            "The acquirer could not post the refund now (`refunds-unavailable`); retry",
        ),
    ];
    let post = |id: &str, summary: &str, body: Option<&str>, success: (&str, Value), path: &str| {
        let mut operation = operation(
            id,
            summary,
            success,
            json!([
                path_id(path)[0].clone(),
                {"name": "Idempotency-Key", "in": "header", "required": true, "schema": {"type": "string", "minLength": 1, "maxLength": 255}, "description": "A fresh key (e.g. a UUID) per operation; a retry with the same key and body gets the original answer."}
            ]),
            &refund_errors,
        );
        if let (Some(body), Value::Object(map)) = (body, &mut operation) {
            map.insert(
                "requestBody".to_owned(),
                json!({"required": body != "RefundAcceptance", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{body}")}}}}),
            );
        }
        operation
    };
    let paths = [
        (
            "/api/v1/transactions/{id}/refunds",
            json!({
                "get": operation("listTransactionRefunds", "A sale's refunds and refund requests, oldest first, for whoever may see the sale", ("200", ok("RefundPage")), path_id("Transaction id"), &[not_found]),
                "post": post("createRefund", "The merchant's staff refund the sale, in full or in part, to the card that paid (posted at once up to the approval threshold, else pending_approval); the cardholder asks for a refund instead (requested)", Some("NewRefund"), ("201", ok("Refund")), "Transaction id")
            }),
        ),
        (
            "/api/v1/refunds",
            json!({"get": operation("listRefunds", "Refunds and refund requests of the caller's merchants, newest first (at most 500)", ("200", ok("RefundPage")), json!([query("status", "Only this status, e.g. pending_approval for a manager's queue", json!({"type": "string", "enum": ["requested", "accepted", "pending_approval", "approved", "refunded", "declined", "failed"]}))]), &[("400", "An unknown status")])}),
        ),
        (
            "/api/v1/refunds/{id}",
            json!({"get": operation("getRefund", "One refund or refund request", ("200", ok("Refund")), path_id("Refund id (rf_…)"), &[not_found])}),
        ),
        (
            "/api/v1/refunds/{id}/approve",
            json!({"post": post("approveRefund", "A manager or administrator other than the one who asked approves a refund pending approval; it is posted at once (approving an approved refund whose posting failed to finish posts it again)", None, ("200", ok("Refund")), "Refund id (rf_…)")}),
        ),
        (
            "/api/v1/refunds/{id}/accept",
            json!({"post": post("acceptRefundRequest", "The merchant accepts a cardholder's refund request: 201 with the refund part made for it", Some("RefundAcceptance"), ("201", ok("Refund")), "Refund request id (rf_…)")}),
        ),
        (
            "/api/v1/refunds/{id}/decline",
            json!({"post": post("declineRefund", "The merchant declines a cardholder's request, or a manager or administrator a refund pending approval, with the reason the other side sees", Some("RefundDecline"), ("200", ok("Refund")), "Refund id (rf_…)")}),
        ),
    ];
    let schemas = [
        (
            "Refund",
            json!({
                "type": "object",
                "required": ["id", "transaction_id", "merchant_id", "kind", "part", "request_id", "amount", "status", "reason", "requested_by", "requested_at", "decided_by", "decided_at", "response"],
                "properties": {
                    "id": {"type": "string", "description": "rf_ and 16 hex digits"},
                    "transaction_id": {"type": "string"},
                    "merchant_id": {"type": "string"},
                    "kind": {"type": "string", "enum": ["refund", "request"], "description": "A part the merchant made, or a cardholder's request"},
                    "part": {"type": ["integer", "null"], "description": "The part's number among the sale's refunds; null for a request"},
                    "request_id": {"type": ["string", "null"], "description": "The cardholder's request this part answers"},
                    "amount": {"$ref": "#/components/schemas/Amount"},
                    "status": {"type": "string", "enum": ["requested", "accepted", "pending_approval", "approved", "refunded", "declined", "failed"]},
                    "reason": {"type": "string"},
                    "requested_by": {"type": "string"},
                    "requested_at": {"type": "string", "format": "date-time"},
                    "decided_by": {"type": ["string", "null"], "description": "Who approved, accepted or declined it"},
                    "decided_at": {"type": ["string", "null"], "format": "date-time"},
                    "response": {"type": ["string", "null"], "description": "00 when posted; the acquirer's code and reason when refused (58: frozen refunds); the reason when declined"}
                }
            }),
        ),
        ("RefundPage", page("Refund")),
        (
            "NewRefund",
            json!({"type": "object", "required": ["amount_minor", "reason"], "additionalProperties": false, "properties": {"amount_minor": {"type": "integer", "minimum": 1, "description": "Minor units, at most what is left to refund"}, "reason": {"type": "string", "description": "1 to 500 characters"}}}),
        ),
        (
            "RefundAcceptance",
            json!({"type": "object", "additionalProperties": false, "properties": {"amount_minor": {"type": "integer", "minimum": 1, "description": "Less than asked; the whole request when absent"}}}),
        ),
        (
            "RefundDecline",
            json!({"type": "object", "required": ["reason"], "additionalProperties": false, "properties": {"reason": {"type": "string", "description": "1 to 500 characters"}}}),
        ),
    ];
    if let Some(Value::Object(map)) = document.get_mut("paths") {
        for (path, item) in paths {
            map.insert(path.to_owned(), item);
        }
    }
    if let Some(Value::Object(map)) = document
        .get_mut("components")
        .and_then(|components| components.get_mut("schemas"))
    {
        for (name, schema) in schemas {
            map.insert(name.to_owned(), schema);
        }
    }
}

/// Disputes and chargebacks (issue 9, docs/aftersale.md): their paths and schemas.
fn add_disputes(document: &mut Value) {
    let not_found = (
        "404",
        "No such record that the caller may see (another tenant's records are not found either)",
    );
    let errors = [
        (
            "400",
            "Missing Idempotency-Key, or a malformed body; `detail` names the field",
        ),
        not_found,
        (
            "409",
            "The dispute is not in a state that allows this step (`dispute-state`), or a request with this Idempotency-Key is still running",
        ),
        (
            "422",
            "Not disputable (`not-disputable`), an answer after the deadline (`answer-too-late`), a chargeback the ledger refused (`chargeback-refused`), or an Idempotency-Key used for another request",
        ),
        (
            "503",
            "The acquirer could not move the money now (`disputes-unavailable`); retry",
        ),
    ];
    let post = |id: &str, summary: &str, body: &str, success: (&str, Value), path: &str| {
        let mut operation = operation(
            id,
            summary,
            success,
            json!([
                path_id(path)[0].clone(),
                {"name": "Idempotency-Key", "in": "header", "required": true, "schema": {"type": "string", "minLength": 1, "maxLength": 255}, "description": "A fresh key (e.g. a UUID) per operation; a retry with the same key and body gets the original answer."}
            ]),
            &errors,
        );
        if let Value::Object(map) = &mut operation {
            map.insert(
                "requestBody".to_owned(),
                json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{body}")}}}}),
            );
        }
        operation
    };
    let mut answer_with_files = operation(
        "answerDisputeWithFiles",
        "The merchant's manager or administrator answers a chargeback with evidence files, before answer_due_at, under the console's rules: up to 5 files, each a PDF, PNG or JPEG (sniffed from the content, not the name) of at most 5 MiB; each keeps its own name, made safe (the last path segment, no control or reserved characters, at most 100 characters, the extension its content says; a repeated name is numbered). Nothing is attached unless the answer is accepted. A dispute is answered once: a repeat is refused (409)",
        ("200", ok("Dispute")),
        path_id("Dispute id (dp_…)"),
        &[
            (
                "400",
                "Not multipart/form-data, more than 5 files, a file over 5 MiB or of another type (named in `detail`)",
            ),
            ("403", "Not the merchant's manager or administrator"),
            ("404", "No dispute that the caller may see"),
            (
                "409",
                "Not charged back, or answered already (`dispute-state`)",
            ),
            (
                "413",
                "The files together are over 25 MiB (`evidence-too-large`)",
            ),
            ("422", "After answer_due_at (`answer-too-late`)"),
            ("503", "The server keeps no documents"),
        ],
    );
    if let Value::Object(map) = &mut answer_with_files {
        map.insert(
            "requestBody".to_owned(),
            json!({"required": true, "content": {"multipart/form-data": {"schema": {
                "type": "object",
                "properties": {
                    "evidence": {"type": "string", "description": "What the merchant says, 1 to 4000 characters"},
                    "certificate": {"type": "string", "description": "Any value: attach the transaction certificate signed by the acquirer"},
                    "file": {"type": "array", "maxItems": 5, "items": {"type": "string", "format": "binary"}, "description": "Evidence files, each with its filename"}
                },
                "required": ["evidence"]
            }}}}),
        );
    }
    let paths = [
        (
            "/api/v1/transactions/{id}/dispute",
            json!({"post": post("openDispute", "The cardholder disputes their transaction: 201 with the dispute, 200 with the one opened before (one per transaction)", "NewDispute", ("201", ok("Dispute")), "Transaction id")}),
        ),
        (
            "/api/v1/disputes/{id}",
            json!({"get": operation("getDispute", "A dispute and its steps, for whoever may see its transaction", ("200", ok("Dispute")), path_id("Dispute id (dp_…)"), &[not_found])}),
        ),
        (
            "/api/v1/disputes/{id}/review",
            json!({"post": post("reviewDispute", "The card's issuer's operator charges the dispute back (the card credited, the merchant's settlement debited; the merchant's deadline starts) or rejects it", "DisputeReview", ("200", ok("Dispute")), "Dispute id (dp_…)")}),
        ),
        (
            "/api/v1/disputes/{id}/answer",
            json!({
                "post": post("answerDispute", "The merchant's manager or administrator answers a chargeback with evidence, before answer_due_at; with files, use the PUT", "DisputeAnswer", ("200", ok("Dispute")), "Dispute id (dp_…)"),
                "put": answer_with_files
            }),
        ),
        (
            "/api/v1/disputes/{id}/documents/{name}",
            json!({"get": operation("getDisputeDocument", "A file of the dispute's answer, byte for byte, for the dispute's parties only (the cardholder, the card's issuer, the merchant's manager or administrator); X-Document-Sha256 is its SHA-256", ("200", json!({"description": "The file", "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}, "image/png": {"schema": {"type": "string", "format": "binary"}}, "image/jpeg": {"schema": {"type": "string", "format": "binary"}}, "application/json": {"schema": {"type": "object"}}}})), json!([path_id("Dispute id (dp_…)")[0].clone(), {"name": "name", "in": "path", "required": true, "schema": {"type": "string"}, "description": "The file's name as the dispute lists it (documents[].name)"}]), &[("404", "No such file, or not one of the dispute's parties")])}),
        ),
        (
            "/api/v1/transactions/{id}/certificate",
            json!({"get": operation("getCertificate", "The transaction certificate signed by the acquirer (R8): JSON (format, certificate text, sha256, key_id, Ed25519 signature over easypos-certificate/1, a line feed and the text) or, with format=pdf, a PDF of it; X-Certificate-Sha256 is the text's SHA-256; every issue is audited (docs/aftersale.md)", ("200", json!({"description": "The certificate", "content": {"application/json": {"schema": {"type": "object"}}, "application/pdf": {"schema": {"type": "string", "format": "binary"}}}})), json!([path_id("Transaction id")[0].clone(), query("format", "json (default) or pdf", json!({"type": "string", "enum": ["json", "pdf"]}))]), &[not_found, ("400", "An unknown format"), ("503", "The server holds no acquirer keys to sign with (`receipts-off`)")])}),
        ),
        (
            "/api/v1/disputes/{id}/decide",
            json!({"post": post("decideDispute", "The card's issuer decides, once answered or after the deadline: for the cardholder the credit is final, for the merchant the chargeback is reversed", "DisputeDecision", ("200", ok("Dispute")), "Dispute id (dp_…)")}),
        ),
    ];
    let time = json!({"type": ["string", "null"], "format": "date-time"});
    let text = json!({"type": ["string", "null"]});
    let schemas = [
        (
            "Dispute",
            json!({
                "type": "object",
                "required": ["id", "transaction_id", "merchant_id", "amount", "reason", "description", "status", "opened_by", "opened_at", "reviewed_by", "reviewed_at", "review_note", "answer_due_at", "answered_by", "answered_at", "evidence", "decided_by", "decided_at", "decision_note", "documents"],
                "properties": {
                    "id": {"type": "string", "description": "dp_ and 16 hex digits"},
                    "transaction_id": {"type": "string"},
                    "merchant_id": {"type": "string"},
                    "amount": {"$ref": "#/components/schemas/Amount"},
                    "reason": {"type": "string", "enum": ["not_recognised", "duplicate", "wrong_amount", "not_received", "cancelled"]},
                    "description": {"type": "string"},
                    "status": {"type": "string", "enum": ["opened", "rejected", "charging_back", "charged_back", "answered", "reversing", "won_by_cardholder", "won_by_merchant"], "description": "charging_back and reversing: the step's money is being moved (the dispute is claimed by one operator)"},
                    "opened_by": {"type": "string"},
                    "opened_at": {"type": "string", "format": "date-time"},
                    "reviewed_by": text.clone(), "reviewed_at": time.clone(), "review_note": text.clone(),
                    "answer_due_at": time.clone(),
                    "answered_by": text.clone(), "answered_at": time.clone(), "evidence": text.clone(),
                    "decided_by": text.clone(), "decided_at": time.clone(), "decision_note": text.clone(),
                    "documents": {"type": "array", "items": {"$ref": "#/components/schemas/DisputeDocument"}, "description": "The answer's files, for the dispute's parties, in a single dispute's view (lists leave it empty)"}
                }
            }),
        ),
        (
            "DisputeDocument",
            json!({
                "type": "object",
                "required": ["name", "content_type", "bytes", "sha256", "uploaded_by", "uploaded_at", "url"],
                "properties": {
                    "name": {"type": "string", "description": "The upload's own name, made safe, or certificate-<transaction>.json"},
                    "content_type": {"type": "string", "enum": ["application/pdf", "image/png", "image/jpeg", "application/json"]},
                    "bytes": {"type": "integer"},
                    "sha256": {"type": "string"},
                    "uploaded_by": {"type": "string"},
                    "uploaded_at": {"type": "string", "format": "date-time"},
                    "url": {"type": "string", "description": "Where the parties download it"}
                }
            }),
        ),
        (
            "NewDispute",
            json!({"type": "object", "required": ["reason", "description"], "additionalProperties": false, "properties": {"reason": {"type": "string", "enum": ["not_recognised", "duplicate", "wrong_amount", "not_received", "cancelled"]}, "description": {"type": "string", "description": "1 to 4000 characters"}}}),
        ),
        (
            "DisputeReview",
            json!({"type": "object", "required": ["decision"], "additionalProperties": false, "properties": {"decision": {"type": "string", "enum": ["chargeback", "reject"]}, "note": {"type": "string", "description": "Required to reject"}}}),
        ),
        (
            "DisputeAnswer",
            json!({"type": "object", "required": ["evidence"], "additionalProperties": false, "properties": {"evidence": {"type": "string", "description": "1 to 4000 characters"}, "certificate": {"type": "boolean", "description": "Attach the transaction certificate signed by the acquirer"}}}),
        ),
        (
            "DisputeDecision",
            json!({"type": "object", "required": ["in_favour_of", "note"], "additionalProperties": false, "properties": {"in_favour_of": {"type": "string", "enum": ["cardholder", "merchant"]}, "note": {"type": "string", "description": "1 to 4000 characters"}}}),
        ),
    ];
    if let Some(Value::Object(map)) = document.get_mut("paths") {
        for (path, item) in paths {
            map.insert(path.to_owned(), item);
        }
    }
    if let Some(Value::Object(map)) = document
        .get_mut("components")
        .and_then(|components| components.get_mut("schemas"))
    {
        for (name, schema) in schemas {
            map.insert(name.to_owned(), schema);
        }
    }
}

/// Cardholder alerts and the cardholder's own freeze (issue 9, R14).
fn add_alerts(document: &mut Value) {
    let not_found = ("404", "Not a card of the caller's");
    let card = path_id("Card id (token)");
    let mut put_settings = operation(
        "putCardAlerts",
        "The cardholder sets the card's alert channels and thresholds; a declined transaction is always alerted; with a webhook URL the answer carries its signing secret",
        ("200", ok("CardAlerts")),
        card.clone(),
        &[
            not_found,
            (
                "400",
                "A malformed body, an unknown channel, or a channel without its address; `detail` names the field",
            ),
        ],
    );
    if let Value::Object(map) = &mut put_settings {
        map.insert(
            "requestBody".to_owned(),
            json!({"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AlertSettings"}}}}),
        );
    }
    let paths = [
        (
            "/api/v1/cards/{id}/alerts",
            json!({
                "get": operation("getCardAlerts", "The card's alert settings, whether it is frozen, and its newest alerts (cardholder only)", ("200", ok("CardAlerts")), card.clone(), &[not_found]),
                "put": put_settings
            }),
        ),
        (
            "/api/v1/cards/{id}/freeze",
            json!({
                "put": operation("freezeOwnCard", "The cardholder freezes their card: its next authorization is declined 62 (204; a card already frozen stays as it is)", ("204", json!({"description": "Frozen"})), card.clone(), &[not_found]),
                "delete": operation("unfreezeOwnCard", "The cardholder lifts their own freeze (204); a freeze of a fraud report or an operator is not theirs to lift (409 `freeze-not-yours`)", ("204", json!({"description": "Unfrozen"})), card, &[not_found, ("409", "Frozen by a fraud report or an operator (`freeze-not-yours`)")])
            }),
        ),
    ];
    let text = json!({"type": ["string", "null"]});
    let settings_properties = json!({
        "channels": {"type": "array", "items": {"type": "string", "enum": ["webhook", "email", "sms"]}},
        "min_amount_minor": {"type": "integer", "minimum": 0, "description": "Approved transactions below this are not alerted"},
        "declines_only": {"type": "boolean"},
        "webhook_url": text.clone(), "email": text.clone(), "phone": text.clone()
    });
    let mut alerts_properties = settings_properties.clone();
    if let Value::Object(map) = &mut alerts_properties {
        for (name, schema) in [
            ("card_id", json!({"type": "string"})),
            ("masked_pan", json!({"type": "string"})),
            ("frozen", json!({"type": "boolean"})),
            ("frozen_reason", text.clone()),
            (
                "webhook_secret",
                json!({"type": "string", "description": "whsec_…: after a change that sets a webhook URL"}),
            ),
            (
                "recent",
                json!({"type": "array", "items": {"$ref": "#/components/schemas/Alert"}}),
            ),
        ] {
            map.insert(name.to_owned(), schema);
        }
    }
    let schemas = [
        (
            "AlertSettings",
            json!({"type": "object", "additionalProperties": false, "properties": settings_properties}),
        ),
        (
            "CardAlerts",
            json!({"type": "object", "required": ["card_id", "masked_pan", "channels", "min_amount_minor", "declines_only", "frozen", "recent"], "properties": alerts_properties}),
        ),
        (
            "Alert",
            json!({
                "type": "object",
                "required": ["id", "event_id", "channel", "state", "attempts", "created_at", "text"],
                "properties": {
                    "id": {"type": "integer"}, "event_id": {"type": "string"},
                    "channel": {"type": "string", "enum": ["webhook", "email", "sms"]},
                    "state": {"type": "string", "enum": ["pending", "delivered", "failed"]},
                    "attempts": {"type": "integer"},
                    "created_at": {"type": "string", "format": "date-time"},
                    "delivered_at": {"type": ["string", "null"], "format": "date-time"},
                    "last_error": text.clone(),
                    "text": {"type": "string", "description": "The alert's words (the card masked)"}
                }
            }),
        ),
    ];
    if let Some(Value::Object(map)) = document.get_mut("paths") {
        for (path, item) in paths {
            map.insert(path.to_owned(), item);
        }
    }
    if let Some(Value::Object(map)) = document
        .get_mut("components")
        .and_then(|components| components.get_mut("schemas"))
    {
        for (name, schema) in schemas {
            map.insert(name.to_owned(), schema);
        }
    }
}

/// Incidents with the acquirer's operations (docs/risk.md#incidents).
fn add_incidents(document: &mut Value) {
    let not_found = (
        "404",
        "No such record that the caller may see (another tenant's records are not found either)",
    );
    let errors = [
        (
            "400",
            "Missing Idempotency-Key, or a malformed body; `detail` names the field",
        ),
        not_found,
        (
            "409",
            "The incident is not in a status that allows this (`incident-state`), or a request with this Idempotency-Key is still running",
        ),
    ];
    let idempotency = json!({"name": "Idempotency-Key", "in": "header", "required": true, "schema": {"type": "string", "minLength": 1, "maxLength": 255}, "description": "A fresh key (e.g. a UUID) per operation; a retry with the same key and body gets the original answer."});
    let with_body = |mut operation: Value, body: &str| {
        if let Value::Object(map) = &mut operation {
            map.insert(
                "requestBody".to_owned(),
                json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{body}")}}}}),
            );
        }
        operation
    };
    let id_and_key = json!([
        path_id("The incident number")[0].clone(),
        idempotency.clone()
    ]);
    let mut attach = operation(
        "attachToIncident",
        "Attach a file to the incident's thread: the body is the file, JPEG, PNG or PDF (sniffed; the Content-Type sent is not trusted), at most 5 MiB",
        ("201", ok("IncidentDetail")),
        json!([path_id("The incident number")[0].clone(), {"name": "name", "in": "path", "required": true, "schema": {"type": "string"}, "description": "The file's name as shown (1 to 100 characters, no / or \\)"}]),
        &[
            not_found,
            ("400", "An empty file or a bad name"),
            ("409", "The incident is closed (`incident-state`)"),
            ("413", "Larger than 5 MiB (`attachment-too-large`)"),
            ("415", "Not JPEG, PNG or PDF (`attachment-type`)"),
            ("503", "The server keeps no documents (`attachments-off`)"),
        ],
    );
    if let Value::Object(map) = &mut attach {
        map.insert(
            "requestBody".to_owned(),
            json!({"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}),
        );
    }
    let paths = [
        (
            "/api/v1/incidents",
            json!({
                "get": operation("listIncidents", "Incidents, newest first: an operator's merchants', a merchant admin's or manager's own, a channel partner's referred merchants'; response_breached says whether the response-time target was missed", ("200", ok("IncidentPage")), json!([query("status", "open, acknowledged, resolved or closed", json!({"type": "string", "enum": ["open", "acknowledged", "resolved", "closed"]}))]), &[("400", "An unknown status")]),
                "post": with_body(operation("openIncident", "A merchant's admin or manager opens an incident with the acquirer's operations, linking the merchant's transactions and cases; the referring channel partners get an incident.opened webhook event", ("201", ok("IncidentDetail")), json!([idempotency.clone()]), &errors), "NewIncident")
            }),
        ),
        (
            "/api/v1/incidents/{id}",
            json!({"get": operation("getIncident", "An incident with its links and thread", ("200", ok("IncidentDetail")), path_id("The incident number"), &[not_found])}),
        ),
        (
            "/api/v1/incidents/{id}/messages",
            json!({"post": with_body(operation("postIncidentMessage", "Add a message to the incident's thread", ("201", ok("IncidentDetail")), id_and_key.clone(), &errors), "IncidentMessageBody")}),
        ),
        (
            "/api/v1/incidents/{id}/status",
            json!({"post": with_body(operation("changeIncidentStatus", "Operations acknowledge (from open) and resolve (from open or acknowledged); the merchant or operations close (from any but closed) and reopen (from resolved)", ("200", ok("IncidentDetail")), id_and_key, &errors), "IncidentStatusChange")}),
        ),
        (
            "/api/v1/incidents/{id}/attachments/{name}",
            json!({"put": attach}),
        ),
        (
            "/api/v1/incidents/{id}/messages/{seq}/attachment",
            json!({"get": operation("getIncidentAttachment", "A message's attachment, byte for byte; X-Attachment-Sha256 is its SHA-256", ("200", json!({"description": "The file", "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}})), json!([path_id("The incident number")[0].clone(), {"name": "seq", "in": "path", "required": true, "schema": {"type": "string"}, "description": "The message's number in the thread"}]), &[not_found])}),
        ),
    ];
    let time = json!({"type": ["integer", "null"], "description": "Unix seconds"});
    let incident_properties = json!({
        "id": {"type": "integer"}, "merchant_id": {"type": "string"}, "title": {"type": "string"},
        "severity": {"type": "string", "enum": ["low", "medium", "high", "critical"]},
        "status": {"type": "string", "enum": ["open", "acknowledged", "resolved", "closed"]},
        "opened_by": {"type": "string"}, "opened_at": {"type": "integer", "description": "Unix seconds"},
        "response_due_at": {"type": "integer", "description": "Unix seconds: opened_at plus the severity's response-time target"},
        "acknowledged_by": {"type": ["string", "null"]}, "acknowledged_at": time.clone(),
        "resolved_at": time.clone(), "closed_at": time, "updated_at": {"type": "integer"},
        "partners": {"type": "array", "items": {"type": "string"}, "description": "The channel partners told when it was opened"},
        "messages": {"type": "integer"},
        "response_breached": {"type": "boolean", "description": "Answered after response_due_at, or not answered and past it"}
    });
    let required = json!([
        "id",
        "merchant_id",
        "title",
        "severity",
        "status",
        "opened_by",
        "opened_at",
        "response_due_at",
        "acknowledged_by",
        "acknowledged_at",
        "resolved_at",
        "closed_at",
        "updated_at",
        "partners",
        "messages",
        "response_breached"
    ]);
    let schemas = [
        (
            "Incident",
            json!({"type": "object", "required": required, "properties": incident_properties}),
        ),
        ("IncidentPage", page("Incident")),
        (
            "IncidentDetail",
            json!({"allOf": [{"$ref": "#/components/schemas/Incident"}, {"type": "object", "required": ["transactions", "cases", "thread"], "properties": {
                "transactions": {"type": "array", "items": {"type": "string"}, "description": "Journal ids"},
                "cases": {"type": "array", "items": {"type": "integer"}},
                "thread": {"type": "array", "items": {"type": "object", "required": ["seq", "at", "author", "text", "attachment"], "properties": {
                    "seq": {"type": "integer"}, "at": {"type": "integer"}, "author": {"type": "string"}, "text": {"type": "string"},
                    "attachment": {"type": ["object", "null"], "properties": {"name": {"type": "string"}, "content_type": {"type": "string"}, "bytes": {"type": "integer"}, "sha256": {"type": "string"}}}
                }}}
            }}]}),
        ),
        (
            "NewIncident",
            json!({"type": "object", "required": ["title", "severity", "description"], "additionalProperties": false, "properties": {
                "title": {"type": "string", "description": "1 to 200 characters"},
                "severity": {"type": "string", "enum": ["low", "medium", "high", "critical"]},
                "description": {"type": "string", "description": "1 to 4000 characters: the thread's first message"},
                "transactions": {"type": "array", "items": {"type": "string"}, "description": "Journal ids of the merchant's transactions"},
                "cases": {"type": "array", "items": {"type": "integer"}, "description": "The merchant's case numbers"}
            }}),
        ),
        (
            "IncidentMessageBody",
            json!({"type": "object", "required": ["text"], "additionalProperties": false, "properties": {"text": {"type": "string", "description": "1 to 4000 characters"}}}),
        ),
        (
            "IncidentStatusChange",
            json!({"type": "object", "required": ["status"], "additionalProperties": false, "properties": {"status": {"type": "string", "enum": ["acknowledged", "resolved", "closed", "open"]}, "note": {"type": "string", "description": "Added to the thread when given"}}}),
        ),
    ];
    if let Some(Value::Object(map)) = document.get_mut("paths") {
        for (path, item) in paths {
            map.insert(path.to_owned(), item);
        }
    }
    if let Some(Value::Object(map)) = document
        .get_mut("components")
        .and_then(|components| components.get_mut("schemas"))
    {
        for (name, schema) in schemas {
            map.insert(name.to_owned(), schema);
        }
    }
}

/// The emergency actions beyond freezes (docs/risk.md#emergency-actions).
fn add_emergency(document: &mut Value) {
    let errors = [
        ("400", "Missing Idempotency-Key, or no reason"),
        (
            "404",
            "No such terminal or merchant that the caller may act on",
        ),
    ];
    let post = |id: &str, summary: &str, described: &str, schema: Value, extra: &[(&str, &str)]| {
        let mut all = errors.to_vec();
        all.extend_from_slice(extra);
        let mut operation = operation(
            id,
            summary,
            (
                "200",
                json!({"description": "Done", "content": {"application/json": {"schema": schema}}}),
            ),
            json!([
                path_id(described)[0].clone(),
                {"name": "Idempotency-Key", "in": "header", "required": true, "schema": {"type": "string", "minLength": 1, "maxLength": 255}, "description": "A fresh key (e.g. a UUID) per operation; a retry with the same key and body gets the original answer."}
            ]),
            &all,
        );
        if let Value::Object(map) = &mut operation {
            map.insert(
                "requestBody".to_owned(),
                json!({"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["reason"], "additionalProperties": false, "properties": {"reason": {"type": "string", "description": "1 to 500 characters"}}}}}}),
            );
        }
        operation
    };
    if let Some(Value::Object(map)) = document.get_mut("paths") {
        map.insert(
            "/api/v1/terminals/{id}/key-change".to_owned(),
            json!({"post": post(
                "forceKeyChange",
                "Drop the terminal's working keys now: its next financial message is declined 58 until it signs on, and the sign-on brings new PIN and MAC keys (operators; a merchant's admin or manager for its terminals)",
                "Terminal id (TID)",
                json!({"type": "object", "required": ["terminal_id", "was_signed_on"], "properties": {"terminal_id": {"type": "string"}, "was_signed_on": {"type": "boolean"}}}),
                &[("409", "A DUKPT terminal (`key-scheme`): use terminal management's forced key change")],
            )}),
        );
        let mut enrol = operation(
            "setSupervisorTerminalPassword",
            "The merchant's admin enrols (or replaces) the password a supervisor or manager keys in at the terminal to allow a void or refund: only its IBM 3624 offset is kept, computed in the HSM; from then on every void and refund of the merchant's terminals must carry a right one (docs/risk.md#supervisor-passwords)",
            (
                "200",
                json!({"description": "Enrolled", "content": {"application/json": {"schema": {"type": "object", "required": ["merchant_id", "operator_no", "set_at"], "properties": {"merchant_id": {"type": "string"}, "operator_no": {"type": "string", "description": "Three digits"}, "set_at": {"type": "integer"}}}}}}),
            ),
            json!([{"name": "operator_no", "in": "path", "required": true, "schema": {"type": "string"}, "description": "The supervisor's operator number (1 to 3 digits)"}]),
            &[
                ("400", "A password that is not 6 to 12 digits"),
                (
                    "404",
                    "No supervisor or manager of that number at the caller's merchant",
                ),
                ("503", "No HSM (`hsm-off`)"),
            ],
        );
        if let Value::Object(map) = &mut enrol {
            map.insert(
                "requestBody".to_owned(),
                json!({"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["password"], "additionalProperties": false, "properties": {"password": {"type": "string", "description": "6 to 12 digits"}}}}}}),
            );
        }
        map.insert(
            "/api/v1/staff/{operator_no}/terminal-password".to_owned(),
            json!({"put": enrol}),
        );
        map.insert(
            "/api/v1/merchants/{id}/password-reset".to_owned(),
            json!({"post": post(
                "forcePasswordReset",
                "Require every console user of the merchant but the caller to choose a new password before the console serves them again; their API keys and HTTP Basic answer 401 password-reset-required meanwhile (operators; the merchant's admin)",
                "Merchant id (MID)",
                json!({"type": "object", "required": ["merchant_id", "users"], "properties": {"merchant_id": {"type": "string"}, "users": {"type": "array", "items": {"type": "string"}}}}),
                &[],
            )}),
        );
    }
}

/// A fraud report's PDF and its SHA-256 manifest (docs/aftersale.md#fraud-reports-r10-r17-r18).
fn add_fraud_documents(document: &mut Value) {
    let not_found = [(
        "404",
        "No fraud report that the caller may see (or, for the PDF, one sealed before packs carried one)",
    )];
    let download = |id: &str, summary: &str, media: &str| {
        operation(
            id,
            summary,
            (
                "200",
                json!({"description": "The download", "content": {media: {"schema": {"type": "string", "format": "binary"}}}}),
            ),
            path_id("Fraud report id (fr_…)"),
            &not_found,
        )
    };
    if let Some(Value::Object(map)) = document.get_mut("paths") {
        map.insert(
            "/api/v1/fraud-reports/{id}/pdf".to_owned(),
            json!({"get": download(
                "getEvidencePdf",
                "The evidence pack as a PDF, byte for byte the pack's evidence.pdf (its SHA-256 in X-Pdf-Sha256 and in the pack's manifest)",
                "application/pdf",
            )}),
        );
        map.insert(
            "/api/v1/fraud-reports/{id}/manifest".to_owned(),
            json!({"get": download(
                "getEvidenceManifest",
                "The SHA-256 of every file of the pack, of the PDF and of the pack itself under their download names, one `<sha256>  <name>` line each (sha256sum -c reads it)",
                "text/plain",
            )}),
        );
    }
}

/// A wallet's own alert settings (docs/aftersale.md#cardholder-alerts-r14).
fn add_wallet_alerts(document: &mut Value) {
    let not_found = ("404", "Not a wallet of the caller's");
    let wallet = path_id("Wallet id");
    let mut put_settings = operation(
        "putWalletAlerts",
        "The wallet's holder sets its alert channels and thresholds, with the same rules as a card's; with a webhook URL the answer carries its signing secret",
        ("200", ok("WalletAlerts")),
        wallet.clone(),
        &[
            not_found,
            (
                "400",
                "A malformed body, an unknown channel, or a channel without its address; `detail` names the field",
            ),
        ],
    );
    if let Value::Object(map) = &mut put_settings {
        map.insert(
            "requestBody".to_owned(),
            json!({"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AlertSettings"}}}}),
        );
    }
    let text = json!({"type": ["string", "null"]});
    if let Some(Value::Object(map)) = document.get_mut("paths") {
        map.insert(
            "/api/v1/wallets/{id}/alerts".to_owned(),
            json!({
                "get": operation("getWalletAlerts", "The wallet's alert settings and its newest alerts (its holder only)", ("200", ok("WalletAlerts")), wallet, &[not_found]),
                "put": put_settings
            }),
        );
    }
    if let Some(Value::Object(map)) = document
        .get_mut("components")
        .and_then(|components| components.get_mut("schemas"))
    {
        map.insert(
            "WalletAlerts".to_owned(),
            json!({
                "type": "object",
                "required": ["wallet_id", "channels", "min_amount_minor", "declines_only", "recent"],
                "properties": {
                    "wallet_id": {"type": "string"},
                    "channels": {"type": "array", "items": {"type": "string", "enum": ["webhook", "email", "sms"]}},
                    "min_amount_minor": {"type": "integer", "minimum": 0, "description": "Approved payments below this are not alerted"},
                    "declines_only": {"type": "boolean"},
                    "webhook_url": text.clone(), "email": text.clone(), "phone": text,
                    "webhook_secret": {"type": "string", "description": "whsec_…: after a change that sets a webhook URL"},
                    "recent": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}}
                }
            }),
        );
    }
}

/// The operating procedures and the training record (docs/risk.md#operating-procedures-and-the-training-record).
fn add_procedures(document: &mut Value) {
    let idempotency = json!({"name": "Idempotency-Key", "in": "header", "required": true, "schema": {"type": "string", "minLength": 1, "maxLength": 255}, "description": "A fresh key (e.g. a UUID) per operation; a retry with the same key and body gets the original answer."});
    let version = json!({"type": "object", "required": ["version", "text", "saved_by", "saved_at", "note"], "properties": {
        "version": {"type": "integer"}, "text": {"type": "string"}, "saved_by": {"type": "string"},
        "saved_at": {"type": "string", "format": "date-time"}, "note": {"type": "string"}
    }});
    let view = json!({"type": "object", "required": ["merchant_id", "current", "acknowledged", "staff", "versions"], "properties": {
        "merchant_id": {"type": "string"},
        "current": {"oneOf": [version.clone(), {"type": "null"}], "description": "The version in force; null when the merchant wrote none"},
        "acknowledged": {"type": "boolean", "description": "Whether the caller acknowledged the current version (true when there is none)"},
        "staff": {"type": "array", "description": "The training record (admins and managers; empty for cashiers)", "items": {"type": "object", "required": ["username", "display_name", "role", "acknowledged_version", "acknowledged_at", "current"], "properties": {
            "username": {"type": "string"}, "display_name": {"type": "string"}, "role": {"type": "string"},
            "acknowledged_version": {"type": ["integer", "null"]},
            "acknowledged_at": {"type": ["string", "null"], "format": "date-time"},
            "current": {"type": "boolean"}
        }}},
        "versions": {"type": "array", "items": version.clone(), "description": "The newest 50 versions, newest first (admins and managers)"}
    }});
    let with_body = |mut operation: Value, schema: Value| {
        if let Value::Object(map) = &mut operation {
            map.insert(
                "requestBody".to_owned(),
                json!({"required": true, "content": {"application/json": {"schema": schema}}}),
            );
        }
        operation
    };
    let get = operation(
        "getProcedures",
        "The merchant's operating procedures in force, whether the caller acknowledged them, and (admins and managers) the training record: who acknowledged which version when (merchant staff)",
        (
            "200",
            json!({"description": "OK", "content": {"application/json": {"schema": view}}}),
        ),
        json!([]),
        &[],
    );
    let save = with_body(
        operation(
            "saveProcedures",
            "The merchant's admin saves a new version of the operating procedures; every member of staff must acknowledge it",
            (
                "201",
                json!({"description": "Saved", "content": {"application/json": {"schema": version}}}),
            ),
            json!([idempotency.clone()]),
            &[
                (
                    "400",
                    "No text, a text over 20,000 or a note over 500 characters",
                ),
                (
                    "409",
                    "`based_on` is not the newest version (`procedures-stale`)",
                ),
            ],
        ),
        json!({"type": "object", "required": ["based_on", "text"], "additionalProperties": false, "properties": {
            "based_on": {"type": "integer", "description": "The version edited (0 for the first)"},
            "text": {"type": "string", "description": "1 to 20,000 characters"},
            "note": {"type": "string", "description": "At most 500 characters"}
        }}),
    );
    let acknowledgement = json!({"type": "object", "required": ["username", "version", "recorded"], "properties": {
        "username": {"type": "string"}, "version": {"type": "integer"},
        "recorded": {"type": "boolean", "description": "false when acknowledged before"}
    }});
    let mut acknowledge = with_body(
        operation(
            "acknowledgeProcedures",
            "A member of the merchant's staff acknowledges the current version of the operating procedures: recorded with the time in the training record",
            (
                "201",
                json!({"description": "Recorded", "content": {"application/json": {"schema": acknowledgement.clone()}}}),
            ),
            json!([idempotency]),
            &[
                ("404", "The merchant wrote no procedures"),
                ("409", "Not the current version (`procedures-stale`)"),
            ],
        ),
        json!({"type": "object", "required": ["version"], "additionalProperties": false, "properties": {"version": {"type": "integer"}}}),
    );
    if let Some(Value::Object(responses)) = acknowledge.get_mut("responses") {
        responses.insert(
            "200".to_owned(),
            json!({"description": "Acknowledged before: nothing new recorded", "content": {"application/json": {"schema": acknowledgement}}}),
        );
    }
    if let Some(Value::Object(map)) = document.get_mut("paths") {
        map.insert("/api/v1/procedures".to_owned(), json!({"get": get}));
        map.insert(
            "/api/v1/procedures/versions".to_owned(),
            json!({"post": save}),
        );
        map.insert(
            "/api/v1/procedures/acknowledgements".to_owned(),
            json!({"post": acknowledge}),
        );
    }
}
