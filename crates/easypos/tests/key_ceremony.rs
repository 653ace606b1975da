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
