//! `easypos up`: opens the store, seeds the demo world on first start, serves `/healthz` and
//! `/metrics`, runs the background jobs, and shuts down cleanly on Ctrl-C or SIGTERM (the HTTP
//! server stops taking requests, the jobs stop, the writer drains and commits).

use crate::config::Config;
use anyhow::{Context, bail};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use demo::Seeded;
use hsm::Hsm;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use store::Store;
use tokio::sync::watch;

pub struct App {
    store: Arc<Store>,
    started: Instant,
    holds_expired: AtomicU64,
    host_stats: host::Stats,
    handler: Arc<acquirer::TerminalHandler>,
}

struct TerminalListener {
    listener: host::Listener,
    handler: Arc<acquirer::TerminalHandler>,
    /// Opens the risk rules' cases; ends once the handler (its queue's sender) is dropped.
    case_writer: tokio::task::JoinHandle<()>,
}

/// The risk rules' text: `risk.rules` when named, else `<data_dir>/risk.toml` when it exists,
/// else the demo world's rules; and where it came from.
pub fn risk_rules_text(config: &Config) -> anyhow::Result<(String, String)> {
    let path = &config.risk_rules;
    if config.risk_rules_named || path.exists() {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read the risk rules {} (risk.rules / EASYPOS_RISK_RULES)",
                path.display()
            )
        })?;
        Ok((text, path.display().to_string()))
    } else {
        Ok((risk::DEMO_RULES.to_owned(), "the demo rules".to_owned()))
    }
}

/// The risk rules of [`risk_rules_text`], checked. Returns them and where they came from.
/// Every error names the file and the setting to fix.
pub fn risk_rules(config: &Config) -> anyhow::Result<(risk::Config, String)> {
    let (text, source) = risk_rules_text(config)?;
    let rules = risk::Config::from_toml(&text).with_context(|| {
        format!("the risk rules in {source} (risk.rules / EASYPOS_RISK_RULES; see docs/risk.md)")
    })?;
    // A declining rule's code goes into field 39: it must be one the host knows.
    if let Err(problem) = api::risk_rules::check_response_codes(&rules) {
        bail!("the risk rules in {source}: {problem}");
    }
    Ok((rules, source))
}

/// The ISO 8583 listener for terminals (`cup-bcd`, 2-byte length + TPDU) with the acquirer's
/// handler over the terminals in the directory.
async fn terminal_listener(
    config: &Config,
    store: &Arc<Store>,
    hsm: Arc<dyn hsm::Hsm>,
) -> anyhow::Result<TerminalListener> {
    let profile = iso8583::Profile::builtin("cup-bcd").context("the built-in cup-bcd profile")?;
    let directory = store.load_directory().await?;
    // With a remote issuer host, every card issuer's BINs lead there.
    let mut remote_bins: std::collections::HashMap<ledger::InstitutionId, Vec<String>> =
        std::collections::HashMap::new();
    if config.remote_issuer.is_some() {
        for card in &directory.cards {
            remote_bins
                .entry(card.issuer)
                .or_default()
                .push(card.pan_first6.clone());
        }
    }
    let terminals = acquirer::TerminalRecord::from_directory(&directory);
    let (rules, _) = risk_rules(config)?;
    // Emergency freezes: loaded here, then changed by this process's API in memory and in the
    // store together, and read again from the store every FREEZE_SYNC_INTERVAL for what other
    // hosts sharing the database changed (`freeze_loop`, docs/scaling.md).
    let freezes = Arc::new(risk::Freezes::new());
    acquirer::freezes::sync_freezes(store, &freezes).await?;
    // The acquirer's receipt signing keys (docs/aftersale.md): the first made in the HSM on
    // first start; approved sales carry a signed statement for the receipt's QR code.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        });
    let receipts = Arc::new(
        aftersale::ReceiptKeys::load(store.clone(), hsm.clone(), now)
            .await
            .context("the receipt signing keys")?,
    );
    // The windows of the rules' longest reach, rebuilt from the journal (docs/risk.md).
    let engine = Arc::new(risk::Engine::new(rules));
    // Edited rules (docs/risk.md#editing-the-rules): the newest stored version is in force;
    // on a first start the rules above are stored as version 1.
    let (text, source) = risk_rules_text(config)?;
    let version = api::risk_rules::load_or_seed(store, &engine, &text, &source, now)
        .await
        .context("the stored risk rules")?;
    tracing::info!(version, "risk rules version in force");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let replayed = acquirer::replay_risk(store, &engine, now_ms).await?;
    tracing::info!(rows = replayed, "risk windows rebuilt from the journal");
    // Cases from the rules, opened in the background off the authorization path.
    let (cases, case_queue) = acquirer::cases::case_channel();
    let case_writer = tokio::spawn(acquirer::cases::write_cases(store.clone(), case_queue));
    let limits = host::Limits {
        max_connections: config.iso8583_max_connections,
        ..host::Limits::default()
    };
    let listener = host::Listener::bind(config.iso8583_listen, iso8583::LengthPrefix::Binary2, limits)
        .await
        .with_context(|| format!("cannot listen for terminals on {} (iso8583.listen / EASYPOS_ISO8583_LISTEN); choose another port", config.iso8583_listen))?;
    let handler = Arc::new(
        remote_bins.into_iter().fold(
            acquirer::TerminalHandler::new(profile, terminals, store.clone(), hsm)
                .with_risk(engine)
                .with_freezes(freezes)
                .with_receipts(receipts)
                .with_cases(cases),
            |handler, (institution, bins)| match config.remote_issuer {
                Some(address) => handler.with_remote_issuer(
                    institution,
                    acquirer::switch::RemoteIssuer::new(address),
                    bins,
                ),
                None => handler,
            },
        ),
    );
    // The supervisors' usual terminals, so that a restart does not alert on them again.
    let usual = handler.load_supervisor_terminals().await?;
    tracing::info!(rows = usual, "supervisors' usual terminals read");
    Ok(TerminalListener {
        case_writer,
        listener,
        handler,
    })
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    let store = Arc::new(crate::open_store(&config).await?);
    let hsm = Arc::new(open_hsm(&config)?);
    rotate_at_start(&config, &store, &hsm).await?;
    let seeded = demo::seed(&store, hsm.as_ref())
        .await
        .context("seeding the demo world")?;
    match seeded {
        Seeded::Now => tracing::info!(version = demo::DEMO_VERSION, "seeded the demo world"),
        Seeded::Already => tracing::info!("demo world already seeded; keeping the existing data"),
    }
    // The wallet institution (issue 8) and its demo wallets, ready before the banner says so.
    let wallets = wallet::Wallets::new(store.clone(), wallet::WalletConfig::demo());
    crate::wallets::seed_demo(&wallets).await?;
    let listener = tokio::net::TcpListener::bind(config.http_listen)
        .await
        .with_context(|| format!("cannot listen on {} (http.listen / EASYPOS_HTTP_LISTEN); is another easypos running? choose another port", config.http_listen))?;
    let address = listener.local_addr()?;
    let terminals = terminal_listener(&config, &store, hsm.clone()).await?;
    let terminal_address = terminals.listener.local_addr()?;
    let app = Arc::new(App {
        store: store.clone(),
        started: Instant::now(),
        holds_expired: AtomicU64::new(0),
        host_stats: terminals.listener.stats(),
        handler: terminals.handler.clone(),
    });
    let (stop, stopped) = watch::channel(false);
    // Reversals the host queued itself (answers it could not give in time) are forwarded
    // until acknowledged, from the first pass after a restart too.
    let store_and_forward = tokio::spawn(
        terminals
            .handler
            .clone()
            .run_store_and_forward(STORE_AND_FORWARD_INTERVAL, stopped.clone()),
    );
    let terminal_server =
        tokio::spawn(terminals.listener.serve(terminals.handler, stopped.clone()));
    let case_writer = terminals.case_writer;
    let expiry = tokio::spawn(expiry_loop(
        app.clone(),
        Duration::from_millis(config.expiry_interval_ms),
        stopped.clone(),
    ));
    let freeze_sync = tokio::spawn(freeze_loop(
        app.clone(),
        FREEZE_SYNC_INTERVAL,
        stopped.clone(),
    ));

    let shutdown = Shutdown::listen();
    print_banner(&config, &store, &hsm, address, terminal_address, seeded).await?;
    let mut server_stop = stopped.clone();
    // The console's second factor and the webhooks' signatures: platform keys generated in
    // the HSM on first start.
    let mfa = console::mfa::Mfa::ensure(&store, hsm.clone())
        .await
        .context("the console's TOTP key")?;
    let webhook_keys = api::webhooks::WebhookKeys::ensure(&store, hsm.clone())
        .await
        .context("the webhook key")?;
    let api_state = api::ApiState::new(store.clone())
        .with_webhooks(webhook_keys)
        .with_documents(config.data_dir.join("documents"))
        .with_hsm(hsm.clone())
        .with_incident_targets(config.incident_targets)
        .with_freezes(app.handler.freezes())
        .with_receipts(app.handler.receipts())
        .with_refunds(
            aftersale::refunds::Refunds::new(store.clone(), app.handler.clone())
                .with_approval_above(config.refund_approval_above_minor),
        )
        .with_disputes(aftersale::disputes::Disputes::new(
            store.clone(),
            app.handler.clone(),
        ))
        .with_anchors(Arc::new(api::audit_anchors::AuditAnchorer::new(
            store.clone(),
            hsm.clone(),
        )))
        .with_documents_dir(config.data_dir.join("documents"))
        .with_alert_senders(api::alerts::AlertSenders {
            smtp: config.alert_smtp.clone(),
            ..api::alerts::AlertSenders::default()
        });
    // Unpaid wallet orders are closed on time.
    let wallet_closer = tokio::spawn(crate::wallets::close_loop(
        wallets.clone(),
        store.clone(),
        crate::wallets::CLOSE_INTERVAL,
        stopped.clone(),
    ));
    // Insider alerts from the journal's new rows, to the merchants' case queues (docs/risk.md).
    let insider = tokio::spawn(api::insider::run(
        store.clone(),
        risk::insider::InsiderRules::default(),
        api::insider::INSIDER_POLL_INTERVAL,
        stopped.clone(),
    ));
    // The audit log's head, signed every ANCHOR_EVERY_ENTRIES entries (docs/audit.md).
    let anchoring = tokio::spawn(api::audit_anchors::run(
        api_state.clone(),
        api::audit_anchors::ANCHOR_POLL_INTERVAL,
        stopped.clone(),
    ));
    let webhooks = tokio::spawn(api::webhooks::run(
        api_state.clone(),
        api::webhooks::PASS_INTERVAL,
        stopped.clone(),
    ));
    // What fraud reports set in motion (case, webhooks, dispute), retried until done
    // (docs/aftersale.md).
    let fraud_follow_ups = tokio::spawn(api::fraud::run_follow_ups(
        api_state.clone(),
        api::fraud::FOLLOW_UP_PASS_INTERVAL,
        stopped.clone(),
    ));
    // Cardholder alerts from the journal's and the wallet's new rows (docs/aftersale.md).
    let alerts = tokio::spawn(api::alerts::run(
        api_state.clone(),
        api::alerts::PASS_INTERVAL,
        stopped.clone(),
    ));
    let onboarding = crate::onboarding_wiring::service(
        &config,
        store.clone(),
        hsm.clone(),
        app.handler.clone(),
        terminal_address,
    );
    // The host learns each onboarded terminal's parameter version, to ask a terminal holding
    // another one to download the set at its sign-on.
    onboarding
        .publish_parameters()
        .await
        .context("the terminals' parameters")?;
    onboarding
        .protect_id_numbers()
        .await
        .context("protecting stored ID numbers")?;
    // What another host sharing the database changed of a terminal (docs/scaling.md).
    let follow = tokio::spawn(follow_loop(
        onboarding.clone(),
        FREEZE_SYNC_INTERVAL,
        stopped.clone(),
    ));
    let server = axum::serve(
        listener,
        router(
            app.clone(),
            api_state.clone(),
            mfa,
            onboarding.clone(),
            wallets.clone(),
        )
        .merge(wallet::http::router(
            wallets,
            api_state.clone(),
            app.handler.clone(),
        ))
        .merge(onboarding::http::router(onboarding, api_state))
        // The client's address limits public applications (`onboarding::limits`).
        .into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = server_stop.wait_for(|stopping| *stopping).await;
    });
    let server = tokio::spawn(async move { server.await });

    shutdown.wait().await;
    println!("Stopping: finishing requests in flight and committing the last writes ...");
    let _ = stop.send(true);
    server
        .await
        .context("HTTP server task")?
        .context("HTTP server")?;
    expiry.await.context("expiry task")?;
    freeze_sync.await.context("freeze sync task")?;
    follow.await.context("terminal change follower")?;
    anchoring.await.context("audit anchoring task")?;
    insider.await.context("insider alerts task")?;
    terminal_server.await.context("terminal listener")?;
    store_and_forward.await.context("store-and-forward task")?;
    webhooks.await.context("webhook task")?;
    fraud_follow_ups
        .await
        .context("fraud report follow-up task")?;
    alerts.await.context("alert task")?;
    wallet_closer.await.context("wallet order closer")?;
    drop(app);
    // The handler is gone with the app, so the case queue closes: its last cases are written.
    case_writer.await.context("risk case writer")?;
    let store = sole_owner(store, SHUTDOWN_WRITES_WITHIN)
        .await
        .context("the store is still in use at shutdown")?;
    store.close().await.context("closing the store")?;
    println!("easypos stopped cleanly.");
    Ok(())
}

/// How long a shutdown waits for writes spawned off the answer path (a supervisor's usual
/// terminal kept in the background, say) to let go of the store before closing it.
const SHUTDOWN_WRITES_WITHIN: Duration = Duration::from_secs(10);

/// The value of `shared` once every other holder has dropped it, waiting at most `within`.
async fn sole_owner<T>(mut shared: Arc<T>, within: Duration) -> anyhow::Result<T> {
    let deadline = Instant::now() + within;
    loop {
        match Arc::try_unwrap(shared) {
            Ok(value) => return Ok(value),
            Err(still) if Instant::now() < deadline => {
                shared = still;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(still) => bail!(
                "{} other holders after {} s",
                Arc::strong_count(&still) - 1,
                within.as_secs()
            ),
        }
    }
}

/// A master-key rotation under way (docs/key-ceremonies.md): on SQLite, the one process that
/// owns the database moves every stored key to the new master key now; on PostgreSQL other
/// nodes may still run with the old key file, so the operator runs `easypos hsm rewrap` once
/// every node has the new one.
async fn rotate_at_start(config: &Config, store: &Store, hsm: &hsm::SoftHsm) -> anyhow::Result<()> {
    let retired = hsm.retired_check_values();
    if retired.is_empty() {
        return Ok(());
    }
    match config.backend {
        store::Backend::Sqlite { .. } => {
            let moved = crate::hsm_cmd::rewrap_stored_keys(store, hsm)
                .await
                .context("moving the stored keys to the new master key")?;
            tracing::warn!(moved, retired = %retired.join(","), "master key rotation: every stored key is under the new master key; run `easypos hsm retire`");
        }
        store::Backend::Postgres { .. } => {
            tracing::warn!(retired = %retired.join(","), "master key rotation under way: once every node runs with this key file, run `easypos hsm rewrap`, then `easypos hsm retire`");
        }
    }
    Ok(())
}

/// The software HSM under the local master key in `hsm.lmk_file`, created with fresh random
/// bytes (readable by the owner only) on the first start.
pub(crate) fn open_hsm(config: &Config) -> anyhow::Result<hsm::SoftHsm> {
    let path = &config.lmk_file;
    if !path.exists() {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let key = hsm::random_bytes::<32>();
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("cannot create the HSM master key file {} (hsm.lmk_file / EASYPOS_HSM_LMK_FILE)", path.display()))?;
        writeln!(file, "{}", paycrypto::to_hex(&key))?;
        tracing::warn!(path = %path.display(), "created a new local master key for the software HSM; back it up with the database: keys stored under it are useless without it");
    }
    hsm::SoftHsm::from_file(path).with_context(|| {
        format!(
            "cannot load the HSM master key from {} (hsm.lmk_file / EASYPOS_HSM_LMK_FILE)",
            path.display()
        )
    })
}

async fn print_banner(
    config: &Config,
    store: &Store,
    hsm: &hsm::SoftHsm,
    address: std::net::SocketAddr,
    terminal_address: std::net::SocketAddr,
    seeded: Seeded,
) -> anyhow::Result<()> {
    let version = store.schema_version().await?;
    let directory = store.load_directory().await?;
    let database = match &config.backend {
        store::Backend::Sqlite { path } => format!("SQLite {} (schema v{version})", path.display()),
        store::Backend::Postgres { .. } if store.reads_replica() => format!(
            "PostgreSQL (schema v{version}); listings read the replica (database.replica_url)"
        ),
        store::Backend::Postgres { .. } => format!("PostgreSQL (schema v{version})"),
    };
    let seeded = match seeded {
        Seeded::Now => "seeded now",
        Seeded::Already => "kept from an earlier start",
    };
    println!("easypos {} is up.", env!("CARGO_PKG_VERSION"));
    println!("  database  {database}");
    println!("  web       http://{address}/");
    println!("  health    http://{address}/healthz");
    println!("  metrics   http://{address}/metrics");
    println!("  console   http://{address}/console");
    println!(
        "  guides    http://{address}/docs (merchants, cashiers, cardholders, operations, integrators; English and Chinese)"
    );
    println!(
        "  api       http://{address}/api/v1 (OpenAPI: http://{address}/api/openapi.json; docs/api.md)"
    );
    println!(
        "  hsm       software HSM (development and testing only), master key check value {}",
        hsm.master_key_check_value()
    );
    let retired = hsm.retired_check_values();
    if !retired.is_empty() {
        println!(
            "            rotating: the retired master key ({}) still opens old keys; `easypos hsm retire` ends the rotation",
            retired.join(", ")
        );
    }
    println!(
        "  ISO 8583  {terminal_address} (cup-bcd, 2-byte length + TPDU): sign-on/off, echo, balance inquiries, sales (chip + PIN, fallback swipe), pre-authorizations, completions and their voids, sale voids, refunds, reversals of each, batch settlement; every message journaled"
    );
    match store.current_risk_rules().await {
        Ok(Some(current)) => println!(
            "  risk      {} rules, version {} ({}; edited in the console's Risk rules page or /api/v1/risk/rules, docs/risk.md); fired rules are in the journal",
            api::risk_rules::check_rules(&current.toml).map_or(0, |rules| rules.rules.len()),
            current.version,
            current.note
        ),
        _ => {
            if let Ok((rules, source)) = risk_rules(config) {
                println!(
                    "  risk      {} rules from {source} (docs/risk.md); fired rules are in the journal",
                    rules.rules.len()
                );
            }
        }
    }
    match config.remote_issuer {
        Some(address) => println!(
            "  issuers   remote: the issuer host at {address} (iso87-ascii), for every card"
        ),
        None => println!("  issuers   in-process (one transaction for both institutions' books)"),
    }
    println!(
        "  demo      {seeded}: {} institutions, {} merchants, {} terminals, {} staff, {} cardholders, {} cards",
        directory.institutions.len(),
        directory.merchants.len(),
        directory.terminals.len(),
        directory.staff.len(),
        directory.cardholders.len(),
        directory.cards.len()
    );
    let users: Vec<&str> = demo::demo_users()
        .into_iter()
        .map(|(username, ..)| username)
        .collect();
    println!(
        "  logins    {} (password {} for each; operators and merchant admins add an authenticator app at first sign-in)",
        users.join(", "),
        demo::DEMO_PASSWORD
    );
    println!(
        "  cards     every demo card's PIN is {}; `easypos cards list`, then `easypos terminal` (docs/terminal.md)",
        demo::DEMO_PIN
    );
    println!(
        "  wallets   Panda Pay wallets {} … (payment password {}); the wallet page at http://{address}/wallet (cardholder1), QR payments at /wallet/v1 (docs/wallet.md)",
        crate::wallets::demo_wallet_id("CH001"),
        crate::wallets::DEMO_WALLET_PASSWORD
    );
    println!("Press Ctrl-C to stop.");
    Ok(())
}

fn router(
    app: Arc<App>,
    api_state: api::ApiState,
    mfa: console::mfa::Mfa,
    onboarding: onboarding::service::Onboarding,
    wallets: wallet::Wallets,
) -> axum::Router {
    // The REST API (`/api/…`) and the web console (`/console/…`) share the store.
    let host_stats = app.host_stats.clone();
    let host_probe: console::HealthProbe = Arc::new(move || {
        host_stats
            .snapshot()
            .metrics()
            .into_iter()
            .map(|metric| (metric.name.to_owned(), metric.value.to_string()))
            .collect()
    });
    axum::Router::new()
        .route("/", get(home))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(app)
        .merge(api::router(api_state.clone()))
        .merge(console::router(
            console::Console::new(api_state, mfa)
                .with_health(host_probe)
                .with_onboarding(onboarding)
                .with_wallets(wallets),
        ))
}

async fn home() -> axum::response::Redirect {
    axum::response::Redirect::to("/console")
}

/// 200 with the store's schema version when the database answers, 503 with the reason when not.
async fn healthz(State(app): State<Arc<App>>) -> Response {
    match app.store.schema_version().await {
        Ok(version) => {
            let body = serde_json::json!({ "status": "ok", "store": app.store.backend_name(), "schema_version": version });
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        Err(error) => {
            tracing::warn!(%error, "health check failed");
            let body = serde_json::json!({ "status": "unavailable", "store": app.store.backend_name(), "detail": "the database does not answer" });
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
        }
    }
}

/// Prometheus text exposition format, version 0.0.4.
async fn metrics(State(app): State<Arc<App>>) -> Response {
    let stats = app.store.stats();
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: String| {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{value}\n"
        ));
    };
    metric(
        "easypos_build_info",
        "gauge",
        "Version and storage backend of this process.",
        format!(
            "easypos_build_info{{version=\"{}\",backend=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION"),
            app.store.backend_name()
        ),
    );
    metric(
        "easypos_uptime_seconds",
        "gauge",
        "Seconds since this process started serving.",
        format!("easypos_uptime_seconds {}", app.started.elapsed().as_secs()),
    );
    metric(
        "easypos_store_commits_total",
        "counter",
        "Transactions committed by the ledger writer.",
        format!("easypos_store_commits_total {}", stats.commits),
    );
    metric(
        "easypos_store_requests_total",
        "counter",
        "Ledger requests handled by the writer.",
        format!("easypos_store_requests_total {}", stats.requests),
    );
    metric(
        "easypos_ledger_transfers_created_total",
        "counter",
        "Ledger transfers created.",
        format!(
            "easypos_ledger_transfers_created_total {}",
            stats.transfers_created
        ),
    );
    metric(
        "easypos_ledger_holds_expired_total",
        "counter",
        "Authorization holds released after their timeout.",
        format!(
            "easypos_ledger_holds_expired_total {}",
            app.holds_expired.load(Ordering::Relaxed)
        ),
    );
    for host_metric in app.host_stats.snapshot().metrics() {
        let name = format!("easypos_host_{}", host_metric.name);
        metric(
            &name,
            host_metric.kind,
            host_metric.help,
            format!("{name} {}", host_metric.value),
        );
    }
    let counters = &app.handler.counters;
    for (name, help, value) in [
        (
            "easypos_acquirer_answered_total",
            "Terminal messages answered.",
            &counters.answered,
        ),
        (
            "easypos_acquirer_rejected_total",
            "Terminal messages rejected as malformed or unknown (30, 12).",
            &counters.rejected,
        ),
        (
            "easypos_acquirer_unparsable_total",
            "Frames that did not unpack; their connections were closed.",
            &counters.unparsable,
        ),
        (
            "easypos_acquirer_sign_ons_total",
            "Terminal sign-ons that received new working keys.",
            &counters.sign_ons,
        ),
        (
            "easypos_acquirer_rate_limited_total",
            "Terminal messages answered 65 because their terminal sent too fast.",
            &counters.rate_limited,
        ),
        (
            "easypos_acquirer_mac_failures_total",
            "Terminal messages whose MAC did not verify (answered A0).",
            &counters.mac_failures,
        ),
        (
            "easypos_acquirer_ksn_replays_total",
            "DUKPT messages whose KSN counter was not above the last one accepted from the device (answered 63).",
            &counters.ksn_replays,
        ),
        (
            "easypos_acquirer_duplicates_total",
            "Duplicate financial messages answered with their original answer from the journal.",
            &counters.duplicates,
        ),
        (
            "easypos_acquirer_late_answers_total",
            "Messages not decided in time, answered 96 with a reversal queued.",
            &counters.late_answers,
        ),
        (
            "easypos_acquirer_reversals_forwarded_total",
            "Reversals the host queued itself and forwarded until acknowledged.",
            &counters.reversals_forwarded,
        ),
        (
            "easypos_acquirer_cases_dropped_total",
            "Risk cases dropped because the case writer's queue was full.",
            &counters.cases_dropped,
        ),
        (
            "easypos_acquirer_journal_failures_total",
            "Terminal messages the journal could not record (they were answered all the same).",
            &counters.journal_failures,
        ),
    ] {
        metric(
            name,
            "counter",
            help,
            format!("{name} {}", value.load(Ordering::Relaxed)),
        );
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

/// How often queued reversals are looked at.
const STORE_AND_FORWARD_INTERVAL: Duration = Duration::from_secs(1);

async fn expiry_loop(app: Arc<App>, interval: Duration, mut stopped: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stopped.wait_for(|stopping| *stopping) => return,
        }
        if !app.store.leads(store::leader::Job::HoldExpiry).await {
            continue;
        }
        match app.store.expire_due().await {
            Ok(0) => {}
            Ok(expired) => {
                app.holds_expired
                    .fetch_add(expired as u64, Ordering::Relaxed);
                tracing::info!(expired, "released expired holds");
            }
            Err(error) => tracing::warn!(%error, "expiring holds failed; will retry"),
        }
    }
}

/// How often the host reads the store's freezes, so that what another host sharing the
/// database froze or lifted (or the API of another process) takes effect here too. Freezes set
/// through this process's own API act at once.
pub const FREEZE_SYNC_INTERVAL: Duration = Duration::from_secs(2);

/// Reconciles the host's in-memory freezes with the store's, every `interval` (off the
/// authorization path: one read of a small table).
async fn freeze_loop(app: Arc<App>, interval: Duration, mut stopped: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let freezes = app.handler.freezes();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stopped.wait_for(|stopping| *stopping) => return,
        }
        match acquirer::freezes::sync_freezes(&app.store, &freezes).await {
            Ok(Some(changed)) if changed > 0 => {
                tracing::info!(changed, "freezes taken over from the store");
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "reading the freezes failed; will retry"),
        }
        // Rules saved through the API or console (of any host sharing the store) take effect
        // here on the same poll.
        if let Some(engine) = app.handler.risk_engine()
            && let Err(error) = api::risk_rules::sync_rules(&app.store, &engine).await
        {
            tracing::warn!(%error, "reading the risk rules failed; will retry");
        }
    }
}

/// Follows the terminal changes every host records (activations, status and key changes,
/// parameters: `onboarding::follow`), every `interval`, so that what onboarding changed through
/// another host sharing the database holds here too. Changes made through this process hold
/// at once.
async fn follow_loop(
    onboarding: onboarding::service::Onboarding,
    interval: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut cursor = onboarding::follow::ChangeCursor::default();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stopped.wait_for(|stopping| *stopping) => return,
        }
        match onboarding.follow_changes(&mut cursor).await {
            Ok(read) if read > 0 => tracing::info!(read, "terminals read again after changes"),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "following terminal changes failed; will retry"),
        }
    }
}

/// Ctrl-C, or SIGTERM from a service manager, listened for from the moment it is made.
///
/// Make it before the banner says the process is up: until a handler is registered, a
/// signal's default action ends the process at once, without draining or committing, and a
/// script that stops the process as soon as it reads "Press Ctrl-C" would race it.
pub(crate) struct Shutdown {
    interrupt: Option<tokio::signal::unix::Signal>,
    terminate: Option<tokio::signal::unix::Signal>,
}

impl Shutdown {
    pub(crate) fn listen() -> Shutdown {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |kind: SignalKind, name: &str| match signal(kind) {
            Ok(signal) => Some(signal),
            Err(error) => {
                tracing::error!(%error, "cannot listen for {name}");
                None
            }
        };
        Shutdown {
            interrupt: listen(SignalKind::interrupt(), "Ctrl-C"),
            terminate: listen(SignalKind::terminate(), "SIGTERM"),
        }
    }

    /// Waits for either signal.
    pub(crate) async fn wait(mut self) {
        async fn next(signal: Option<&mut tokio::signal::unix::Signal>) {
            match signal {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        }
        tokio::select! {
            () = next(self.interrupt.as_mut()) => {}
            () = next(self.terminate.as_mut()) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shutdown_waits_for_the_last_other_holder_and_gives_up_after_its_time() {
        let shared = Arc::new(5);
        let other = shared.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(other);
        });
        assert_eq!(sole_owner(shared, Duration::from_secs(5)).await.unwrap(), 5);

        let shared = Arc::new(6);
        let _kept = shared.clone();
        let error = sole_owner(shared, Duration::from_millis(60))
            .await
            .unwrap_err();
        assert!(error.to_string().contains("1 other holders"), "{error}");
    }
}
