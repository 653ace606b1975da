//! Editing the risk rules (docs/risk.md#editing-the-rules): the acquirer's operators save a new
//! version of the whole rules file, or roll back to an earlier one, through the API and the
//! console. A version is checked by the engine's own parser first (a bad one is refused with
//! the setting to fix, and nothing changes), stored with who, when and why, and recorded in the
//! audit log with its line diff; every host puts the newest version in force within 2 seconds
//! ([`sync_rules`], called by the host's store poll).

use crate::ApiState;
use crate::access::{Principal, Resource};
use crate::problem::Problem;
use crate::routes::require;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use store::Store;
use store::accounts::Role;
use store::risk_rules::RuleVersion;

/// Longest rules file accepted: 64 rules of a dozen short lines each fit many times over.
pub const MAX_RULES_TOML_BYTES: usize = 64 * 1024;
/// Longest note of a save, in characters.
pub const MAX_NOTE_CHARS: usize = 500;
/// Versions a list returns when the caller does not say.
pub const DEFAULT_VERSIONS_LISTED: i64 = 50;
/// Longest diff kept in the audit entry (the version itself holds the whole text).
const MAX_AUDIT_DIFF_CHARS: usize = 1_500;

/// A version as the API shows it, with what changed from the one before.
#[derive(Clone, Debug, Serialize)]
pub struct VersionView {
    #[serde(flatten)]
    pub version: RuleVersion,
    /// Rules evaluated under it (disabled ones not counted).
    pub rules: usize,
    /// Lines removed (`-`) and added (`+`) against the previous version; empty for the first.
    pub diff: String,
}

/// The body of `POST /api/v1/risk/rules/versions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewVersion {
    /// The version the edit started from (`0` for the first save): a save on top of another
    /// editor's newer version is refused with 409 instead of undoing it.
    pub based_on: i64,
    pub toml: String,
    #[serde(default)]
    pub note: String,
}

/// The body of `POST /api/v1/risk/rules/versions/{version}/rollback`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    #[serde(default)]
    pub note: String,
}

fn operators_only(principal: &Principal) -> Result<(), Problem> {
    require(principal, Resource::Audit)?;
    if principal.user.role != Role::PlatformOperator {
        return Err(Problem::forbidden(
            "only the acquirer's operators read and edit the risk rules",
        ));
    }
    Ok(())
}

/// Lines of `old` missing from `new` (`- `) and lines of `new` not in `old` (`+ `), in order,
/// from their longest common subsequence. Rules files are small (at most 64 rules), so the
/// quadratic table is a few hundred thousand cells at worst.
pub fn line_diff(old: &str, new: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
    let mut common = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            common[i][j] = if a[i] == b[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            (i, j) = (i + 1, j + 1);
        } else if i < a.len() && (j == b.len() || common[i + 1][j] >= common[i][j + 1]) {
            out.push(format!("- {}", a[i]));
            i += 1;
        } else {
            out.push(format!("+ {}", b[j]));
            j += 1;
        }
    }
    out.join("\n")
}

async fn view(store: &Store, version: RuleVersion) -> Result<VersionView, Problem> {
    let previous = match version.version {
        1 => None,
        n => store.risk_rule_version(n - 1).await?,
    };
    let diff = line_diff(
        previous
            .as_ref()
            .map_or("", |previous| previous.toml.as_str()),
        &version.toml,
    );
    let rules = risk::Config::from_toml(&version.toml).map_or(0, |config| config.rules.len());
    Ok(VersionView {
        version,
        rules,
        diff,
    })
}

/// A declining rule's code goes into field 39: it must be one the host knows.
pub fn check_response_codes(rules: &risk::Config) -> Result<(), String> {
    let codes = rules
        .rules
        .iter()
        .filter_map(|rule| match rule.action {
            risk::Action::Decline(code) => {
                Some((format!("rule \"{}\".response_code", rule.name), code))
            }
            _ => None,
        })
        .chain(std::iter::once((
            "engine.decline_code".to_owned(),
            rules.decline_code,
        )));
    for (setting, code) in codes {
        if iso8583::ResponseCode::parse(code.as_str()).is_none() {
            return Err(format!(
                "`{setting}` is {:?}, which is not an ISO 8583 response code easypos knows (docs/protocol.md)",
                code.as_str()
            ));
        }
    }
    Ok(())
}

/// The engine's parser and [`check_response_codes`]: the rules, or why they are refused.
pub fn check_rules(toml: &str) -> Result<risk::Config, String> {
    let rules = risk::Config::from_toml(toml).map_err(|error| error.to_string())?;
    check_response_codes(&rules)?;
    Ok(rules)
}

fn note(text: &str) -> Result<String, Problem> {
    let text = text.trim();
    if text.chars().count() > MAX_NOTE_CHARS {
        return Err(Problem::bad_request(format!(
            "`note` has at most {MAX_NOTE_CHARS} characters"
        )));
    }
    Ok(text.to_owned())
}

/// Checks `toml` with the engine's parser and saves it after `based_on`; the console's form
/// and the API's route. 422 names the setting to fix; 409 when `based_on` is not the newest.
pub async fn save(
    state: &ApiState,
    principal: &Principal,
    based_on: i64,
    toml: &str,
    note_text: &str,
    action: &str,
) -> Result<VersionView, Problem> {
    operators_only(principal)?;
    let note = note(note_text)?;
    if toml.len() > MAX_RULES_TOML_BYTES {
        return Err(Problem::bad_request(format!(
            "`toml` has at most {MAX_RULES_TOML_BYTES} bytes"
        )));
    }
    if let Err(error) = check_rules(toml) {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "risk-rules-invalid",
            "Risk rules refused",
            format!("{error}; nothing was changed"),
        ));
    }
    let saved = state
        .store
        .save_risk_rules(
            based_on,
            toml.to_owned(),
            principal.user.username.clone(),
            state.now_seconds(),
            note,
        )
        .await?
        .ok_or_else(|| {
            Problem::new(
                StatusCode::CONFLICT,
                "risk-rules-changed",
                "Risk rules changed meanwhile",
                format!(
                    "version {based_on} is no longer the newest: someone saved after it; reload the rules and edit again"
                ),
            )
        })?;
    let shown = view(&state.store, saved).await?;
    let mut detail = format!("{}\n{}", shown.version.note, shown.diff);
    if detail.chars().count() > MAX_AUDIT_DIFF_CHARS {
        detail = detail.chars().take(MAX_AUDIT_DIFF_CHARS).collect();
        detail.push('…');
    }
    state
        .audit(
            &principal.user,
            action,
            &format!("risk_rules:{}", shown.version.version),
            &detail,
            crate::audit::tenant_label(&principal.user.tenant),
        )
        .await?;
    tracing::warn!(version = shown.version.version, by = %principal.user.username, "risk rules saved");
    Ok(shown)
}

/// Saves version `version`'s text again as the newest (a rollback is a new version).
pub async fn rollback(
    state: &ApiState,
    principal: &Principal,
    version: i64,
    note_text: &str,
) -> Result<VersionView, Problem> {
    operators_only(principal)?;
    let earlier = state
        .store
        .risk_rule_version(version)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no risk rules version {version}")))?;
    let newest = state
        .store
        .current_risk_rules()
        .await?
        .map_or(0, |current| current.version);
    let note = match note(note_text)? {
        text if text.is_empty() => format!("rollback to version {version}"),
        text => format!("rollback to version {version}: {text}"),
    };
    save(
        state,
        principal,
        newest,
        &earlier.toml,
        &note,
        "risk_rules.rollback",
    )
    .await
}

/// `GET /api/v1/risk/rules`: the version in force.
pub async fn current(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
) -> Result<Json<VersionView>, Problem> {
    operators_only(&principal)?;
    let current = state.store.current_risk_rules().await?.ok_or_else(|| {
        Problem::not_found("no risk rules version is stored yet: `easypos up` stores the rules it starts with as version 1")
    })?;
    Ok(Json(view(&state.store, current).await?))
}

/// `GET /api/v1/risk/rules/versions`: the newest versions first.
pub async fn list_versions(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
) -> Result<Json<Vec<VersionView>>, Problem> {
    operators_only(&principal)?;
    let mut shown = Vec::new();
    for version in state
        .store
        .risk_rule_versions(DEFAULT_VERSIONS_LISTED)
        .await?
    {
        shown.push(view(&state.store, version).await?);
    }
    Ok(Json(shown))
}

/// `POST /api/v1/risk/rules/versions`: a new version (201).
pub async fn create_version(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<VersionView>), Problem> {
    operators_only(&principal)?;
    let request: NewVersion = crate::cases::body(
        &bytes,
        r#"{"based_on": 3, "toml": "[[rule]] …", "note": "lower card velocity"}"#,
    )?;
    let saved = save(
        &state,
        &principal,
        request.based_on,
        &request.toml,
        &request.note,
        "risk_rules.save",
    )
    .await?;
    Ok((StatusCode::CREATED, Json(saved)))
}

/// `POST /api/v1/risk/rules/versions/{version}/rollback`: the earlier text as a new version
/// (201).
pub async fn rollback_version(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(version): Path<String>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<VersionView>), Problem> {
    operators_only(&principal)?;
    let version = version
        .parse::<i64>()
        .map_err(|_| Problem::not_found(format!("no risk rules version {version}")))?;
    let request: Rollback = if bytes.is_empty() {
        Rollback::default()
    } else {
        crate::cases::body(
            &bytes,
            r#"{"note": "the new threshold declined good sales"}"#,
        )?
    };
    let saved = rollback(&state, &principal, version, &request.note).await?;
    Ok((StatusCode::CREATED, Json(saved)))
}

/// Puts the store's newest rules version in force in `engine` when it is not already;
/// `Some(version)` when it changed. A stored version the parser refuses (written behind the
/// API's back) is logged and the rules in force stay.
pub async fn sync_rules(
    store: &Store,
    engine: &risk::Engine,
) -> Result<Option<i64>, store::StoreError> {
    let Some(current) = store.current_risk_rules().await? else {
        return Ok(None);
    };
    if current.version == engine.rules_version() {
        return Ok(None);
    }
    match risk::Config::from_toml(&current.toml) {
        Ok(config) => {
            engine.replace_rules(config, current.version);
            tracing::info!(version = current.version, "risk rules version put in force");
            Ok(Some(current.version))
        }
        Err(error) => {
            tracing::error!(version = current.version, %error, "the stored risk rules are refused; the rules in force stay");
            Ok(None)
        }
    }
}

/// At start: the newest stored version when there is one, else `seed` (the file's or the demo
/// rules) stored as version 1 by `system`, so that editors always start from what runs.
/// Returns the version in force.
pub async fn load_or_seed(
    store: &Store,
    engine: &risk::Engine,
    seed: &str,
    source: &str,
    now: i64,
) -> Result<i64, store::StoreError> {
    if store.current_risk_rules().await?.is_none() {
        store
            .save_risk_rules(
                0,
                seed.to_owned(),
                "system".into(),
                now,
                format!("the rules easypos started with ({source})"),
            )
            .await?;
    }
    sync_rules(store, engine).await?;
    Ok(engine.rules_version())
}

#[cfg(test)]
mod tests {
    use super::line_diff;

    #[test]
    fn the_diff_shows_removed_and_added_lines_in_order() {
        assert_eq!(line_diff("", ""), "");
        assert_eq!(line_diff("a\nb\nc", "a\nb\nc"), "");
        assert_eq!(
            line_diff("a\nmax_count = 10\nc", "a\nmax_count = 3\nc\nd"),
            "- max_count = 10\n+ max_count = 3\n+ d"
        );
        assert_eq!(line_diff("x\ny", ""), "- x\n- y");
    }
}
