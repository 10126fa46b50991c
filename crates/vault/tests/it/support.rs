//! What the mail tests share: a vault on a clock the test moves, SMTP to a loopback port, and
//! the outbox's rows as stored.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use custos_core::crypto::RootKey;
use custos_core::ids::{MailId, SubjectId};
use custos_core::inventory::{
    EXAMPLE, Inventory, MailConfig, MailTransport, SmtpConfig, SmtpSecurity,
};
use custos_core::mail::Mail;
use custos_core::personal::PersonalValue;
use custos_store::{CopyRow, Location, OutboxRow, Store, Table};
use custos_vault::{Clock, Principal, Transport, Vault};

/// A clock the test moves.
pub(crate) struct TestClock(pub(crate) AtomicI64);

impl Clock for TestClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl TestClock {
    pub(crate) fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

/// A vault over `store` with a clock of the test's own.
pub(crate) struct Env {
    pub(crate) vault: Arc<Vault>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<TestClock>,
}

pub(crate) fn root_copy(root: &RootKey) -> RootKey {
    RootKey::from_file_contents(root.to_file_contents().expose_secret()).unwrap()
}

pub(crate) async fn env_on(store: Arc<dyn Store>, root: &RootKey, clock: Arc<TestClock>) -> Env {
    let inventory = Inventory::from_toml(EXAMPLE).unwrap();
    let vault = Vault::with_store(store.clone(), inventory, root_copy(root), clock.clone())
        .await
        .unwrap();
    Env {
        vault: Arc::new(vault),
        store,
        clock,
    }
}

pub(crate) async fn sqlite_env(dir: &Path, root: &RootKey) -> Env {
    let store = custos_store::open(&Location::Sqlite(dir.join("custos.db")))
        .await
        .unwrap();
    let clock = Arc::new(TestClock(AtomicI64::new(1_767_225_600_000)));
    env_on(store, root, clock).await
}

/// SMTP in clear to a loopback port, as the inventory allows only there.
pub(crate) fn smtp(port: u16) -> Transport {
    let config = MailConfig {
        from: "Example Shop Ltd <privacy@shop.example>".parse().unwrap(),
        transport: MailTransport::Smtp(SmtpConfig {
            host: "127.0.0.1".into(),
            port,
            security: SmtpSecurity::None,
            credentials: None,
        }),
    };
    Transport::from_config(&config, Path::new("/nonexistent")).unwrap()
}

pub(crate) fn mail(to: &str, subject: &str, text: &str) -> Mail {
    Mail::new(&PersonalValue::text(to), subject, text).unwrap()
}

pub(crate) async fn outbox(store: &dyn Store) -> Vec<OutboxRow> {
    store
        .export(Table::Outbox, None, 1_000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| match r {
            CopyRow::Mail(m) => m,
            other => panic!("{other:?}"),
        })
        .collect()
}

pub(crate) async fn row(store: &dyn Store, id: MailId) -> OutboxRow {
    outbox(store)
        .await
        .into_iter()
        .find(|r| r.id == id)
        .unwrap()
}

pub(crate) async fn subject(vault: &Vault) -> SubjectId {
    vault
        .put_record(
            &Principal::Cli,
            "customers",
            None,
            &custos_vault::demo_customer(3),
        )
        .await
        .unwrap()
        .subject_id
}

pub(crate) const HOUR: i64 = 3_600_000;

/// Two vaults on one PostgreSQL schema with one root key and one clock, as two `custos
/// serve` on one database; `None` (the test is skipped, loudly) only when
/// `CUSTOS_TEST_POSTGRES_URL` is unset. Keep the schema: dropping it drops the database's.
pub(crate) async fn two_on_postgres() -> Option<(custos_store::testing::Schema, Env, Env)> {
    let schema = custos_store::testing::Schema::create().await?;
    let location = Location::Postgres(schema.url.clone());
    custos_store::migrate(&location).await.unwrap();
    let root = RootKey::generate(1).unwrap();
    let clock = Arc::new(TestClock(AtomicI64::new(1_767_225_600_000)));
    let a = env_on(
        custos_store::open(&location).await.unwrap(),
        &root,
        clock.clone(),
    )
    .await;
    let b = env_on(custos_store::open(&location).await.unwrap(), &root, clock).await;
    Some((schema, a, b))
}
