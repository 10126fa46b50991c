//! The tests only PostgreSQL needs: its migrations are not automatic.

use custos_store::testing::{Schema, connect};
use custos_store::{Location, StoreError};

#[tokio::test]
async fn postgres_is_migrated_by_command_never_by_opening() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let location = Location::Postgres(schema.url.clone());
    match custos_store::open(&location).await {
        Err(StoreError::SchemaTooOld {
            found: 0,
            supported,
        }) => assert!(supported >= 1),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("an unmigrated database was opened"),
    }
    // Several instances may migrate at once: one applies, the others find nothing to do.
    let (a, b, c) = tokio::join!(
        custos_store::migrate(&location),
        custos_store::migrate(&location),
        custos_store::migrate(&location)
    );
    let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
    assert!([a, b, c].iter().all(|v| v.supported == a.supported));
    let again = custos_store::migrate(&location).await.unwrap();
    assert_eq!(again.found, again.supported, "nothing left to apply");
    drop(custos_store::open(&location).await.unwrap());
    let client = connect(&schema.url).await;
    let versions: Vec<i64> = client
        .query("SELECT version FROM custos_schema ORDER BY version", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, (1..=again.supported).collect::<Vec<_>>());
    client
        .batch_execute("INSERT INTO custos_schema VALUES (999, 0)")
        .await
        .unwrap();
    for result in [
        custos_store::open(&location).await.map(drop),
        custos_store::migrate(&location).await.map(drop),
    ] {
        match result {
            Err(StoreError::SchemaTooNew { found: 999, .. }) => {}
            Err(e) => panic!("wrong error: {e}"),
            Ok(()) => panic!("a newer schema was accepted"),
        }
    }
}

#[tokio::test]
async fn an_unreachable_postgres_is_unavailable_and_names_no_password() {
    // Nothing listens on port 9 of loopback.
    let location = Location::Postgres("postgres://custos:s3cret@127.0.0.1:9/test".into());
    let e = match custos_store::open(&location).await {
        Err(e) => e,
        Ok(_) => panic!("opened a database that is not there"),
    };
    assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
    assert!(!e.to_string().contains("s3cret"), "{e}");
}
