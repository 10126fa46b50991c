//! PostgreSQL test databases: one schema per test, dropped afterwards, and the tests that
//! only PostgreSQL needs (its migrations are not automatic).

use custos_store::{Location, StoreError};

/// The variable that names the PostgreSQL server for tests.
pub(crate) const URL_VAR: &str = "CUSTOS_TEST_POSTGRES_URL";

/// A schema of one test's own; `url` selects it through `search_path`.
pub(crate) struct Schema {
    base: String,
    name: String,
    pub(crate) url: String,
}

impl Schema {
    /// `None` when the variable is unset. When it is set, an unreachable server fails the test.
    pub(crate) async fn create() -> Option<Schema> {
        let Ok(base) = std::env::var(URL_VAR) else {
            eprintln!("SKIPPED: {URL_VAR} is not set, so this PostgreSQL test did not run");
            return None;
        };
        let name = format!("custos_t_{}", uuid::Uuid::new_v4().simple());
        let client = connect(&base).await;
        client
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{name}");
        Some(Schema { base, name, url })
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (base, name) = (self.base.clone(), self.name.clone());
        // Drop runs outside any runtime we may block; a thread of its own does the work.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let client = connect(&base).await;
                let _ = client
                    .batch_execute(&format!("DROP SCHEMA {name} CASCADE"))
                    .await;
            });
        })
        .join();
    }
}

pub(crate) async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("{URL_VAR} is set but PostgreSQL is not reachable: {e}"));
    tokio::spawn(conn);
    client
}

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
