#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The master-key ceremony as custodians run it (docs/key-ceremonies.md): components made for
//! three custodians, combined into the key file with matching check values, and the platform
//! started on that key; and the refusals that keep one person from holding the key alone or
//! a key file from being overwritten.

mod common;

use common::{run, start_with, temp_dir};

/// The check value after `label` in lines like "component 1: … check value ABC123".
fn check_values(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.split("check value ").nth(1))
        .map(|rest| rest.split_whitespace().next().unwrap().to_owned())
        .collect()
}

#[test]
fn three_custodians_make_and_combine_a_master_key_the_platform_starts_on() {
    let dir = temp_dir("ceremony", "combine");
    let made = run(
        &dir,
        &["hsm", "components", "--count", "3", "--dir", "custodians"],
    );
    assert_eq!(made.code, 0, "{}", made.stderr);
    let created = check_values(&made.stdout);
    assert_eq!(created.len(), 4, "{}", made.stdout);
    let master = created[3].clone();
    for number in 1..=3 {
        let path = dir.join(format!("custodians/component-{number}.key"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // No component is the key.
        assert_ne!(created[number - 1], master);
    }

    // Two of three custodians cannot rebuild it.
    let partial = run(
        &dir,
        &[
            "hsm",
            "combine",
            "--component",
            "custodians/component-1.key",
            "--component",
            "custodians/component-2.key",
            "--out",
            "partial.key",
        ],
    );
    assert_eq!(partial.code, 0, "{}", partial.stderr);
    assert_ne!(check_values(&partial.stdout).last().unwrap(), &master);

    let combined = run(
        &dir,
        &[
            "hsm",
            "combine",
            "--component",
            "custodians/component-3.key",
            "--component",
            "custodians/component-1.key",
            "--component",
            "custodians/component-2.key",
            "--out",
            "easypos-data/hsm-lmk.key",
        ],
    );
    assert_eq!(combined.code, 0, "{}", combined.stderr);
    let values = check_values(&combined.stdout);
    assert_eq!(values.last().unwrap(), &master, "{}", combined.stdout);
    assert_eq!(
        values[..3],
        [created[2].clone(), created[0].clone(), created[1].clone()]
    );

    // The platform runs on the combined key and reports the same check value.
    let mut running = start_with(
        &dir,
        &["up", "--http", "127.0.0.1:0", "--iso8583", "127.0.0.1:0"],
    );
    assert!(
        running
            .banner
            .iter()
            .any(|line| line.contains(&format!("master key check value {master}"))),
        "{:?}",
        running.banner
    );
    running.stop();
}

#[test]
fn a_ceremony_refuses_one_custodian_a_repeated_component_and_an_existing_key() {
    let dir = temp_dir("ceremony", "refusals");
    assert_eq!(
        run(&dir, &["hsm", "components", "--count", "2", "--dir", "c"]).code,
        0
    );
    let refused = |args: &[&str], says: &str| {
        let result = run(&dir, args);
        assert_ne!(result.code, 0, "{}", result.stdout);
        assert!(result.stderr.contains(says), "{}", result.stderr);
    };
    refused(
        &[
            "hsm",
            "combine",
            "--component",
            "c/component-1.key",
            "--out",
            "k",
        ],
        "one person alone must not hold the key",
    );
    refused(
        &[
            "hsm",
            "combine",
            "--component",
            "c/component-1.key",
            "--component",
            "c/component-1.key",
            "--out",
            "k",
        ],
        "the same component as another one",
    );
    std::fs::write(dir.join("bad.key"), "not hex").unwrap();
    refused(
        &[
            "hsm",
            "combine",
            "--component",
            "c/component-1.key",
            "--component",
            "bad.key",
            "--out",
            "k",
        ],
        "is not a key component",
    );
    std::fs::write(dir.join("existing.key"), "keep me").unwrap();
    refused(
        &[
            "hsm",
            "combine",
            "--component",
            "c/component-1.key",
            "--component",
            "c/component-2.key",
            "--out",
            "existing.key",
        ],
        "never overwritten",
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("existing.key")).unwrap(),
        "keep me"
    );
    assert!(!dir.join("k").exists());
    refused(
        &["hsm", "components", "--count", "1", "--dir", "d"],
        "2 to 9",
    );
    refused(&["hsm", "components", "--dir", "c"], "exists");
}

/// The key lines (not comments) of a key file.
fn key_lines(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .count()
}

#[test]
fn the_master_key_rotates_while_terminals_keep_selling() {
    let dir = temp_dir("ceremony", "rotate");
    let mut running = start_with(
        &dir,
        &["up", "--http", "127.0.0.1:0", "--iso8583", "127.0.0.1:0"],
    );
    common::sell(&dir, running.terminals);
    running.stop();
    let lmk = dir.join("easypos-data/hsm-lmk.key");
    let refused = |args: &[&str], says: &str| {
        let result = run(&dir, args);
        assert_ne!(result.code, 0, "{}", result.stdout);
        assert!(result.stderr.contains(says), "{}", result.stderr);
    };
    refused(&["hsm", "retire"], "nothing to retire");

    // A new key from two custodians.
    assert_eq!(
        run(&dir, &["hsm", "components", "--count", "2", "--dir", "new"]).code,
        0
    );
    let combined = run(
        &dir,
        &[
            "hsm",
            "combine",
            "--component",
            "new/component-1.key",
            "--component",
            "new/component-2.key",
            "--out",
            "new.key",
        ],
    );
    assert_eq!(combined.code, 0, "{}", combined.stderr);
    let new_value = check_values(&combined.stdout).last().unwrap().clone();
    refused(
        &["hsm", "rotate", "--new-key", "easypos-data/hsm-lmk.key"],
        "is the current master key",
    );
    let rotated = run(&dir, &["hsm", "rotate", "--new-key", "new.key"]);
    assert_eq!(rotated.code, 0, "{}", rotated.stderr);
    assert_eq!(key_lines(&lmk), 2);
    refused(
        &["hsm", "rotate", "--new-key", "new.key"],
        "a rotation is already under way",
    );
    // Nothing has moved yet: retiring now would strand every stored key.
    refused(
        &["hsm", "retire"],
        "are not under the current master key yet",
    );
    assert_eq!(key_lines(&lmk), 2);

    // The restart moves every stored key; the terminal keeps selling.
    let mut running = start_with(
        &dir,
        &["up", "--http", "127.0.0.1:0", "--iso8583", "127.0.0.1:0"],
    );
    assert!(
        running
            .banner
            .iter()
            .any(|line| line.contains(&format!("master key check value {new_value}"))),
        "{:?}",
        running.banner
    );
    assert!(running.banner.iter().any(|line| line.contains("rotating")));
    common::sell(&dir, running.terminals);
    // Retired while the platform runs (it reads the database beside it).
    let retired = run(&dir, &["hsm", "retire"]);
    assert_eq!(retired.code, 0, "{}", retired.stderr);
    assert_eq!(key_lines(&lmk), 1);
    common::sell(&dir, running.terminals);
    running.stop();

    // Only the new key from now on, and everything still opens.
    let mut running = start_with(
        &dir,
        &["up", "--http", "127.0.0.1:0", "--iso8583", "127.0.0.1:0"],
    );
    assert!(!running.banner.iter().any(|line| line.contains("rotating")));
    common::sell(&dir, running.terminals);
    running.stop();
    let audit = run(&dir, &["backup", "--out", "after-rotation", "--json"]);
    assert_eq!(audit.code, 0, "{}", audit.stderr);
    assert_eq!(audit.json["master_key_check_value"], new_value.as_str());
}

#[test]
fn on_postgresql_the_operator_rewraps_once_every_node_has_the_rotated_key_file() {
    let Some(admin) = store::testing::postgres_url() else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let database = runtime.block_on(store::testing::postgres(&admin));
    let store::Backend::Postgres { url } = database.backend.clone() else {
        unreachable!()
    };
    let dir = temp_dir("ceremony", "rotate-pg");
    let up = [
        "--database-url",
        url.as_str(),
        "up",
        "--http",
        "127.0.0.1:0",
        "--iso8583",
        "127.0.0.1:0",
    ];
    let with_db = |args: &[&str]| {
        let mut all = vec!["--database-url", url.as_str()];
        all.extend_from_slice(args);
        run(&dir, &all)
    };
    let mut running = start_with(&dir, &up);
    common::sell(&dir, running.terminals);
    running.stop();
    assert_eq!(
        run(&dir, &["hsm", "components", "--count", "2", "--dir", "new"]).code,
        0
    );
    assert_eq!(
        run(
            &dir,
            &[
                "hsm",
                "combine",
                "--component",
                "new/component-1.key",
                "--component",
                "new/component-2.key",
                "--out",
                "new.key",
            ],
        )
        .code,
        0
    );
    assert_eq!(with_db(&["hsm", "rotate", "--new-key", "new.key"]).code, 0);

    // A node restarted with the rotated file opens keys under both and moves none by itself.
    let mut running = start_with(&dir, &up);
    common::sell(&dir, running.terminals);
    let early = with_db(&["hsm", "retire"]);
    assert_ne!(early.code, 0);
    assert!(
        early.stderr.contains("easypos hsm rewrap"),
        "{}",
        early.stderr
    );
    // Every node has the file: the operator rewraps while the platform runs.
    let rewrapped = with_db(&["hsm", "rewrap"]);
    assert_eq!(rewrapped.code, 0, "{}", rewrapped.stderr);
    assert!(!rewrapped.stdout.starts_with("0 "), "{}", rewrapped.stdout);
    let retired = with_db(&["hsm", "retire"]);
    assert_eq!(retired.code, 0, "{}", retired.stderr);
    common::sell(&dir, running.terminals);
    running.stop();
    let mut running = start_with(&dir, &up);
    common::sell(&dir, running.terminals);
    running.stop();
    drop(database);
}
