//! Operators end to end in the vault: added with a setup link, a password chosen under the
//! rules, TOTP enrolled, signed in with a code accepted once, locked after failed logins,
//! a recovery code used once, disabled with their sessions ended on every server; and no
//! address, password or secret left in the database file.

use std::net::{IpAddr, Ipv4Addr};

use custos_core::operator::LoginRefusal;
use custos_core::operator::password::Password;
use custos_core::operator::totp::TotpSecret;
use custos_core::principal::{Act, authorize};
use custos_vault::{AuditFilter, Principal, SetupStage, Vault, VaultError};

use crate::support::{sqlite_env, two_on_postgres};

const EMAIL: &str = "Dana.Officer@Example.com";
const PASSWORD: &str = "vXq7-Lm2p-Rt9z canary";
const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn pw(s: &str) -> Password {
    Password::new(s.to_owned())
}

/// Adds an operator and sets them up, enrolled at `now`; the authenticator's secret as the
/// app would hold it.
async fn set_up(vault: &Vault, role: &str, now: i64) -> TotpSecret {
    let new = vault
        .add_operator(&Principal::Cli, EMAIL, role)
        .await
        .unwrap();
    let token = new.setup_token.expose_secret().clone();
    let view = vault.operator_setup(&token).await.unwrap();
    assert_eq!(view.email, "dana.officer@example.com");
    assert!(matches!(view.stage, SetupStage::Password));
    let view = vault
        .choose_password(&token, pw(PASSWORD), pw(PASSWORD))
        .await
        .unwrap();
    let SetupStage::Authenticator { uri, secret } = view.stage else {
        panic!("the authenticator comes next");
    };
    assert!(uri.expose_secret().starts_with("otpauth://totp/"));
    let secret = TotpSecret::from_base32(secret.expose_secret()).unwrap();
    vault
        .enrol_totp(&token, &secret.code_at(now).unwrap())
        .await
        .unwrap();
    secret
}

fn refusal(e: VaultError) -> LoginRefusal {
    match e {
        VaultError::LoginRefused(r) => r,
        e => panic!("not a login refusal: {e:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_sets_up_signs_in_once_per_code_and_is_locked_out() {
    let dir = tempfile::tempdir().unwrap();
    let root = custos_core::crypto::RootKey::generate(1).unwrap();
    let env = sqlite_env(dir.path(), &root).await;
    let v = &env.vault;
    let now = || env.clock.0.load(std::sync::atomic::Ordering::SeqCst);

    // Refusals at setup name the field and change nothing.
    let new = v
        .add_operator(&Principal::Cli, EMAIL, "privacy_officer")
        .await
        .unwrap();
    let token = new.setup_token.expose_secret().clone();
    for (a, b, field) in [
        ("password1234", "password1234", "password"),
        ("short", "short", "password"),
        (PASSWORD, "something else entirely", "password_again"),
    ] {
        match v.choose_password(&token, pw(a), pw(b)).await {
            Err(VaultError::Invalid { field: Some(f), .. }) => assert_eq!(f, field),
            other => panic!("{a:?}: {other:?}"),
        }
    }
    assert!(matches!(
        v.operator_setup(&token).await.unwrap().stage,
        SetupStage::Password
    ));
    assert!(matches!(
        v.add_operator(&Principal::Cli, "dana.officer@example.com", "support")
            .await,
        Err(VaultError::Conflict(_))
    ));
    assert!(matches!(
        v.add_operator(&Principal::Cli, "x@example.com", "superuser").await,
        Err(VaultError::Invalid { field: Some(f), .. }) if f == "role"
    ));
    let view = v
        .choose_password(&token, pw(PASSWORD), pw(PASSWORD))
        .await
        .unwrap();
    let SetupStage::Authenticator { secret, .. } = view.stage else {
        panic!("the authenticator comes next");
    };
    let secret = TotpSecret::from_base32(secret.expose_secret()).unwrap();
    // Not signed in before enrolment.
    let code = secret.code_at(now()).unwrap();
    let e = v.operator_login(EMAIL, pw(PASSWORD), &code, CLIENT).await;
    assert_eq!(refusal(e.unwrap_err()), LoginRefusal::NotActive);
    assert!(v.enrol_totp(&token, "000000").await.is_err() || code == "000000");
    let recovery = v.enrol_totp(&token, &code).await.unwrap();
    assert_eq!(recovery.len(), 10);
    // The link is spent.
    assert!(matches!(
        v.operator_setup(&token).await,
        Err(VaultError::Unauthenticated)
    ));

    // The enrolment's code is used: a login with it is a replay.
    let e = v.operator_login(EMAIL, pw(PASSWORD), &code, CLIENT).await;
    assert_eq!(refusal(e.unwrap_err()), LoginRefusal::WrongCode);
    env.clock.advance(30_000);
    let code = secret.code_at(now()).unwrap();
    let e = v
        .operator_login(EMAIL, pw("wrong password here"), &code, CLIENT)
        .await;
    assert_eq!(refusal(e.unwrap_err()), LoginRefusal::WrongPassword);
    let s = v
        .operator_login(EMAIL, pw(PASSWORD), &code, CLIENT)
        .await
        .unwrap();
    let session = v.operator_session(s.token.expose_secret()).await.unwrap();
    assert_eq!(session.role, "privacy_officer");
    assert_eq!(session.email, "dana.officer@example.com");
    let p = session.principal();
    assert!(authorize(&p, &Act::HandleRequests, v.inventory()).is_ok());
    assert!(authorize(&p, &Act::ManageApiKeys, v.inventory()).is_err());
    // The same code again, right away: a replay.
    let e = v.operator_login(EMAIL, pw(PASSWORD), &code, CLIENT).await;
    assert_eq!(refusal(e.unwrap_err()), LoginRefusal::WrongCode);
    let e = v
        .operator_login("nobody@example.com", pw(PASSWORD), &code, CLIENT)
        .await;
    assert_eq!(refusal(e.unwrap_err()), LoginRefusal::UnknownAddress);

    // A recovery code signs in once.
    let rc = recovery[3].expose_secret().to_lowercase();
    v.operator_login(EMAIL, pw(PASSWORD), &rc, CLIENT)
        .await
        .unwrap();
    let e = v.operator_login(EMAIL, pw(PASSWORD), &rc, CLIENT).await;
    assert_eq!(refusal(e.unwrap_err()), LoginRefusal::WrongCode);

    // Five failures in a row lock the account (the reused recovery code was the first);
    // the right password and a fresh code are then refused until the lock passes.
    for _ in 0..4 {
        let e = v
            .operator_login(EMAIL, pw("not my password!"), "123456", CLIENT)
            .await;
        assert_eq!(refusal(e.unwrap_err()), LoginRefusal::WrongPassword);
    }
    env.clock.advance(30_000);
    let fresh = secret.code_at(now()).unwrap();
    let e = v.operator_login(EMAIL, pw(PASSWORD), &fresh, CLIENT).await;
    assert_eq!(refusal(e.unwrap_err()), LoginRefusal::Locked);
    env.clock.advance(61_000);
    let fresh = secret.code_at(now()).unwrap();
    v.operator_login(EMAIL, pw(PASSWORD), &fresh, CLIENT)
        .await
        .unwrap();

    // Sessions idle out after 30 minutes; signing out ends one.
    env.clock.advance(31 * 60_000);
    assert!(matches!(
        v.operator_session(s.token.expose_secret()).await,
        Err(VaultError::Unauthenticated)
    ));

    // Every step is in the audit trail.
    let page = v
        .audit_entries(
            &Principal::Cli,
            &AuditFilter {
                limit: 200,
                ..AuditFilter::default()
            },
        )
        .await
        .unwrap();
    let actions: Vec<String> = page
        .entries
        .iter()
        .map(|r| custos_vault::action_name(r.entry.action))
        .collect();
    for want in [
        "operator.add",
        "operator.password",
        "operator.enrol",
        "operator.login",
        "operator.login_failed",
        "operator.lockout",
        "operator.recovery_code",
    ] {
        assert!(actions.iter().any(|a| a == want), "{want} in {actions:?}");
    }
    let failures = v
        .audit_entries(
            &Principal::Cli,
            &AuditFilter {
                action: Some("operator.login_failed".into()),
                limit: 200,
                ..AuditFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(failures.entries.len(), 11, "every failure, and only those");

    // Nothing readable of the operator in the database file.
    drop(env);
    let mut bytes = Vec::new();
    for name in ["custos.db", "custos.db-wal"] {
        if let Ok(b) = std::fs::read(dir.path().join(name)) {
            bytes.extend(b);
        }
    }
    let text = String::from_utf8_lossy(&bytes).to_lowercase();
    for canary in [
        "dana.officer",
        "canary",
        &secret_base32(&secret).to_lowercase(),
    ] {
        assert!(!text.contains(canary), "{canary} is in the database file");
    }
}

fn secret_base32(s: &TotpSecret) -> String {
    custos_core::operator::totp::TotpSecret::from_bytes(s.expose_bytes().to_vec())
        .base32()
        .expose_secret()
        .clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disabled_operators_sessions_end_on_every_server() {
    let Some((_schema, a, b)) = two_on_postgres().await else {
        return;
    };
    let now = a.clock.0.load(std::sync::atomic::Ordering::SeqCst);
    let secret = set_up(&a.vault, "support", now).await;
    // The code the setup was not finished with: enrol on server a, sign in on server b.
    let token = a
        .vault
        .reset_operator_mfa(&Principal::Cli, EMAIL)
        .await
        .unwrap()
        .setup_token
        .expose_secret()
        .clone();
    let view = a
        .vault
        .choose_password(&token, pw(PASSWORD), pw(PASSWORD))
        .await
        .unwrap();
    let SetupStage::Authenticator { secret: again, .. } = view.stage else {
        panic!("the authenticator comes next");
    };
    let again = TotpSecret::from_base32(again.expose_secret()).unwrap();
    assert_ne!(
        again.expose_bytes(),
        secret.expose_bytes(),
        "a reset gives a new secret"
    );
    a.vault
        .enrol_totp(&token, &again.code_at(now).unwrap())
        .await
        .unwrap();
    b.clock.advance(30_000);
    a.clock.advance(30_000);
    let code = again.code_at(now + 30_000).unwrap();
    let s = b
        .vault
        .operator_login(EMAIL, pw(PASSWORD), &code, CLIENT)
        .await
        .unwrap();
    // The same code on the other server is a replay there too.
    let e = a
        .vault
        .operator_login(EMAIL, pw(PASSWORD), &code, CLIENT)
        .await;
    assert_eq!(refusal(e.unwrap_err()), LoginRefusal::WrongCode);
    let t = s.token.expose_secret();
    a.vault.operator_session(t).await.unwrap();
    b.vault.operator_session(t).await.unwrap();
    let info = a
        .vault
        .disable_operator(&Principal::Cli, EMAIL)
        .await
        .unwrap();
    assert_eq!(info.status, "disabled");
    for v in [&a.vault, &b.vault] {
        assert!(matches!(
            v.operator_session(t).await,
            Err(VaultError::Unauthenticated)
        ));
    }
    a.clock.advance(30_000);
    let code = again.code_at(now + 60_000).unwrap();
    let e = b
        .vault
        .operator_login(EMAIL, pw(PASSWORD), &code, CLIENT)
        .await;
    assert_eq!(refusal(e.unwrap_err()), LoginRefusal::NotActive);
    // Managing operators takes manage_operators.
    let officer = Principal::Operator {
        id: info.id.clone(),
        role: "support".into(),
    };
    assert!(matches!(
        a.vault.operators(&officer).await,
        Err(VaultError::Forbidden(_))
    ));
    assert_eq!(a.vault.operators(&Principal::Cli).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn logins_at_once_get_no_more_tries_than_the_lockout_allows() {
    let dir = tempfile::tempdir().unwrap();
    let root = custos_core::crypto::RootKey::generate(1).unwrap();
    let env = sqlite_env(dir.path(), &root).await;
    let secret = set_up(
        &env.vault,
        "auditor",
        env.clock.0.load(std::sync::atomic::Ordering::SeqCst),
    )
    .await;
    env.clock.advance(30_000);
    let now = env.clock.0.load(std::sync::atomic::Ordering::SeqCst);
    // Forty guesses at once, with the right password and wrong codes.
    let tries: Vec<_> = (0..40)
        .map(|i| {
            let v = env.vault.clone();
            tokio::spawn(async move {
                v.operator_login(EMAIL, pw(PASSWORD), &format!("{:06}", 100_000 + i), CLIENT)
                    .await
            })
        })
        .collect();
    let mut checked = 0;
    for t in tries {
        match t.await.unwrap() {
            Err(VaultError::LoginRefused(LoginRefusal::WrongCode)) => checked += 1,
            Err(VaultError::LoginRefused(LoginRefusal::Locked)) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        checked, 5,
        "five codes were compared, the rest refused unchecked"
    );
    // Locked: even the right code is refused, until an operator who may unlocks it.
    let code = secret.code_at(now).unwrap();
    let e = env
        .vault
        .operator_login(EMAIL, pw(PASSWORD), &code, CLIENT)
        .await;
    assert_eq!(refusal(e.unwrap_err()), LoginRefusal::Locked);
    let info = env
        .vault
        .unlock_operator(&Principal::Cli, EMAIL)
        .await
        .unwrap();
    assert_eq!(info.locked_until_ms, None);
    env.vault
        .operator_login(EMAIL, pw(PASSWORD), &code, CLIENT)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn managing_operators_gives_no_more_than_one_holds_and_a_stale_setup_loses() {
    let dir = tempfile::tempdir().unwrap();
    let root = custos_core::crypto::RootKey::generate(1).unwrap();
    let env = sqlite_env(dir.path(), &root).await;
    let v = &env.vault;
    let officer = Principal::Operator {
        id: "o".into(),
        role: "privacy_officer".into(),
    };
    for role in ["admin", "support"] {
        assert!(
            matches!(
                v.add_operator(&officer, "x@example.com", role).await,
                Err(VaultError::Forbidden(_))
            ),
            "{role}"
        );
    }
    v.add_operator(&Principal::Cli, "root@example.com", "admin")
        .await
        .unwrap();
    assert!(matches!(
        v.reset_operator_mfa(&officer, "root@example.com").await,
        Err(VaultError::Forbidden(_))
    ));
    assert!(matches!(
        v.create_api_key(&officer, "k", "admin").await,
        Err(VaultError::Forbidden(_))
    ));
    v.add_operator(&officer, "aud@example.com", "auditor")
        .await
        .unwrap();

    // A password chosen from a link that a reset replaced meanwhile is refused: the reset
    // wins.
    let new = v
        .add_operator(&Principal::Cli, "late@example.com", "auditor")
        .await
        .unwrap();
    let old = new.setup_token.expose_secret().clone();
    let fresh = v
        .reset_operator_mfa(&Principal::Cli, "late@example.com")
        .await
        .unwrap();
    assert!(matches!(
        v.choose_password(&old, pw(PASSWORD), pw(PASSWORD)).await,
        Err(VaultError::Unauthenticated)
    ));
    v.choose_password(
        fresh.setup_token.expose_secret(),
        pw(PASSWORD),
        pw(PASSWORD),
    )
    .await
    .unwrap();
}
