//! `store::onboarding` on every backend: a group of statements is kept whole or not at all,
//! a conditional update that finds no row undoes the group, and `RETURNING` writes read back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use store::Store;
use store::onboarding::{Cell, Kind, Step};

fn count(rows: &[Vec<Cell>]) -> i64 {
    rows[0][0].as_int().unwrap()
}

#[tokio::test]
async fn a_group_is_kept_whole_or_not_at_all() {
    for backend in store::testing::backends().await {
        let name = backend.name;
        let store = Store::open(&backend.backend).await.unwrap();
        let insert = |name: &str, value: i64| {
            Step::new(
                "INSERT INTO sequences (name, value) VALUES ($1, $2)",
                vec![Cell::text(name), Cell::int(value)],
            )
        };
        assert!(
            store
                .onboarding_execute(vec![insert("a", 1), insert("b", 2)])
                .await
                .unwrap()
        );
        // The second statement's condition finds no row: the first is undone too.
        let kept = store
            .onboarding_execute(vec![
                insert("c", 3),
                Step::new(
                    "UPDATE sequences SET value = 9 WHERE name = $1 AND value = $2",
                    vec![Cell::text("a"), Cell::int(42)],
                )
                .expect_one(),
            ])
            .await
            .unwrap();
        assert!(!kept, "{name}");
        // A failing statement (a duplicate key) undoes the group and is an error.
        assert!(
            store
                .onboarding_execute(vec![insert("d", 4), insert("a", 5)])
                .await
                .is_err(),
            "{name}"
        );
        let rows = store
            .onboarding_query("SELECT COUNT(*) FROM sequences", vec![], &[Kind::Int])
            .await
            .unwrap();
        assert_eq!(count(&rows), 2, "{name}: only a and b");
        // A NULL parameter reads as NULL.
        let rows = store
            .onboarding_query(
                "SELECT name FROM sequences WHERE CAST($1 AS TEXT) IS NULL OR name = CAST($1 AS TEXT) ORDER BY name",
                vec![Cell::Text(None)],
                &[Kind::Text],
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 2, "{name}");
        let next = store
            .onboarding_write_returning(
                "INSERT INTO sequences (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = sequences.value + 1 RETURNING value",
                vec![Cell::text("b"), Cell::int(100)],
                &[Kind::Int],
            )
            .await
            .unwrap();
        assert_eq!(count(&next), 3, "{name}");
        store.close().await.unwrap();
    }
}
