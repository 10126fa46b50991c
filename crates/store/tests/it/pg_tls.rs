//! PostgreSQL over TLS, against the test server with a certificate this test makes: a CA of
//! its own signs a certificate for 127.0.0.1 and localhost, the server is pointed at it for
//! the test and put back afterwards (`ALTER SYSTEM RESET`, so whatever the server's own
//! configuration said holds again). Plain connections keep working meanwhile (`ssl = on`
//! lets a `host` line of pg_hba.conf take both), so other tests are not disturbed.

use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use custos_store::testing::{Schema, URL_VAR, connect};
use custos_store::{Location, StoreError};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// Held by this test on the server, so that two runs of it never change its TLS at once.
const TLS_TEST_LOCK: i64 = 0x0063_7573_7474_6c73;

/// A CA: its PEM and what signs with it.
fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// The server's certificate and key, both PEM, signed by `ca`.
fn server_cert(ca: &CertifiedIssuer<'static, KeyPair>) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "custos test postgres");
    let cert = params.signed_by(&key, &**ca).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn write(path: &Path, text: &str, mode: u32, owner: Option<(u32, u32)>) {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .unwrap();
    std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    }
}

/// Puts the server's TLS settings back and removes the files, also when the test fails.
struct Restore {
    base: String,
    dir: PathBuf,
}

impl Drop for Restore {
    fn drop(&mut self) {
        let (base, dir) = (self.base.clone(), self.dir.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let admin = connect(&base).await;
                for sql in [
                    "ALTER SYSTEM RESET ssl_cert_file",
                    "ALTER SYSTEM RESET ssl_key_file",
                    "ALTER SYSTEM RESET ssl",
                    "SELECT pg_reload_conf()",
                ] {
                    let _ = admin.batch_execute(sql).await;
                }
            });
            // The server reads the files when it reloads: give it the moment it takes.
            std::thread::sleep(Duration::from_secs(1));
            let _ = std::fs::remove_dir_all(dir);
        })
        .join();
    }
}

async fn migrate(url: &str) -> Result<(), StoreError> {
    custos_store::migrate(&Location::Postgres(url.to_owned()))
        .await
        .map(drop)
}

#[tokio::test]
async fn postgres_over_tls_checks_the_certificate_as_sslmode_says() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let base = std::env::var(URL_VAR).unwrap();
    let admin = connect(&base).await;
    admin
        .execute("SELECT pg_advisory_lock($1)", &[&TLS_TEST_LOCK])
        .await
        .unwrap();
    // The files go into the server's data directory, owned by the server's user: it reads
    // them there, and they outlive any temporary directory should this test be killed.
    let data: String = admin
        .query_one("SHOW data_directory", &[])
        .await
        .unwrap()
        .get(0);
    let meta = std::fs::metadata(&data).unwrap();
    let owner = Some((meta.uid(), meta.gid()));
    let dir = Path::new(&data).join("custos_test_tls");
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::chown(&dir, owner.map(|o| o.0), owner.map(|o| o.1)).unwrap();
    let _restore = Restore {
        base: base.clone(),
        dir: dir.clone(),
    };
    let (ca, other_ca) = (ca("custos test CA"), ca("another CA"));
    let (cert, key) = server_cert(&ca);
    write(&dir.join("server.crt"), &cert, 0o644, owner);
    write(&dir.join("server.key"), &key, 0o600, owner);
    let client = tempfile::tempdir().unwrap();
    let ca_file = client.path().join("ca.pem");
    let other_file = client.path().join("other.pem");
    write(&ca_file, &ca.pem(), 0o644, None);
    write(&other_file, &other_ca.pem(), 0o644, None);
    for sql in [
        format!(
            "ALTER SYSTEM SET ssl_cert_file = '{}'",
            dir.join("server.crt").display()
        ),
        format!(
            "ALTER SYSTEM SET ssl_key_file = '{}'",
            dir.join("server.key").display()
        ),
        "ALTER SYSTEM SET ssl = on".to_owned(),
        "SELECT pg_reload_conf()".to_owned(),
    ] {
        admin.batch_execute(&sql).await.unwrap();
    }

    let with = |url: &str, query: &str| format!("{url}&{query}");
    let full = with(
        &schema.url,
        &format!("sslmode=verify-full&sslrootcert={}", ca_file.display()),
    );
    // The server takes the new certificate a moment after the reload.
    let started = Instant::now();
    while let Err(e) = migrate(&full).await {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "verify-full with the right CA never connected: {e}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let held = custos_store::open(&Location::Postgres(full.clone()))
        .await
        .expect("open over verify-full");

    // Another CA's certificate is not the server's: refused, and the error says why.
    let e = migrate(&with(
        &schema.url,
        &format!("sslmode=verify-full&sslrootcert={}", other_file.display()),
    ))
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("invalid peer certificate"), "{e}");
    let e = migrate(&with(
        &schema.url,
        &format!("sslmode=verify-ca&sslrootcert={}", other_file.display()),
    ))
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("invalid peer certificate"), "{e}");

    // A host name the certificate does not hold: verify-full refuses, verify-ca (the chain
    // only) connects. hostaddr says where the server is; the name checked is the URL's.
    let port = schema.server_addr().rsplit_once(':').unwrap().1.to_owned();
    let renamed = format!(
        "{}&hostaddr=127.0.0.1",
        schema.url_via(&format!("db.wrong.example:{port}"))
    );
    let e = migrate(&with(
        &renamed,
        &format!("sslmode=verify-full&sslrootcert={}", ca_file.display()),
    ))
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("not valid for name"), "{e}");
    migrate(&with(
        &renamed,
        &format!("sslmode=verify-ca&sslrootcert={}", ca_file.display()),
    ))
    .await
    .expect("verify-ca checks the chain only");

    // require without a root encrypts and checks nothing, as libpq does; with the root it is
    // verify-ca.
    migrate(&with(&renamed, "sslmode=require"))
        .await
        .expect("require");
    let e = migrate(&with(
        &schema.url,
        &format!("sslmode=require&sslrootcert={}", other_file.display()),
    ))
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("invalid peer certificate"), "{e}");

    // The connections above were TLS: the server says so of this test's own.
    let tls_sessions: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
             WHERE ssl AND application_name = 'custos' AND client_addr = '127.0.0.1'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(tls_sessions >= 1, "no TLS session from custos");
    drop(held);
}
