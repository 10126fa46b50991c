//! Test support: a PostgreSQL schema of one test's own, for this crate's conformance suite
//! and the end-to-end tests of the crates above it. Behind the `test-support` feature.

/// The variable that names the PostgreSQL server for tests. `.ci/run` sets it.
pub const URL_VAR: &str = "CUSTOS_TEST_POSTGRES_URL";

/// A schema of one test's own, dropped with this value; `url` selects it (`search_path`) so
/// tests run in parallel on one database.
#[derive(Debug)]
pub struct Schema {
    base: String,
    name: String,
    /// A URL whose connections work in this schema.
    pub url: String,
}

impl Schema {
    /// `None` (and a line saying the test was skipped) when [`URL_VAR`] is unset.
    ///
    /// # Panics
    /// When [`URL_VAR`] is set and the server cannot be reached: the test fails, it is not
    /// skipped.
    pub async fn create() -> Option<Schema> {
        let Ok(base) = std::env::var(URL_VAR) else {
            eprintln!("SKIPPED: {URL_VAR} is not set, so this PostgreSQL test did not run");
            return None;
        };
        let name = format!("custos_t_{}", uuid::Uuid::new_v4().simple());
        let client = connect(&base).await;
        client
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .expect("creating a test schema");
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{name}");
        Some(Schema { base, name, url })
    }

    /// The schema's URL with its host and port replaced, for a proxy in front of the server.
    pub fn url_via(&self, host_port: &str) -> String {
        let u = crate::location::UrlParts::split(&self.url);
        let user = u.userinfo.map(|u| format!("{u}@")).unwrap_or_default();
        format!("{}://{user}{host_port}{}", u.scheme, u.tail)
    }

    /// The server's `HOST:PORT` from the base URL (5432 when it names none).
    pub fn server_addr(&self) -> String {
        let host = crate::location::UrlParts::split(&self.base).host;
        if host.contains(':') {
            host.to_owned()
        } else {
            format!("{host}:5432")
        }
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (base, name) = (self.base.clone(), self.name.clone());
        // Drop may run inside a runtime that must not block; a thread of its own does it.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
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

/// A plain client for tests.
///
/// # Panics
/// When the server cannot be reached.
pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("{URL_VAR} is set but PostgreSQL is not reachable: {e}"));
    tokio::spawn(conn);
    client
}

/// Bytes shaped as a key wrapped by root key version `version` (the header a wrapped key
/// opens with, then `tag` repeated): what the conformance suite stores as wrapped keys.
pub fn wrapped_key(version: u32, tag: u8) -> Vec<u8> {
    let mut w = vec![1];
    w.extend_from_slice(&version.to_be_bytes());
    w.extend(std::iter::repeat_n(tag, 12 + 36 + 16));
    w
}
