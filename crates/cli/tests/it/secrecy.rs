//! No plaintext personal value at rest or in logs: canary values written through the API are
//! searched for in every byte under the data directory and everything the server logged.

use base64::Engine;
use serde_json::json;

use crate::{Server, client, custos, initialised, stderr};

/// The forms a value could leak in: as written, normalised, hex, base64 at every alignment.
pub(crate) fn forms(v: &str) -> Vec<Vec<u8>> {
    let mut out = vec![
        v.as_bytes().to_vec(),
        hex::encode(v).into_bytes(),
        hex::encode_upper(v).into_bytes(),
    ];
    for engine in [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::URL_SAFE,
    ] {
        for pad in 0..3 {
            // A value inside a longer plaintext is encoded at one of three alignments; keep
            // the characters that depend on the value alone.
            let prefixed = format!("{}{v}", "\0".repeat(pad));
            let enc = engine.encode(prefixed.as_bytes());
            let skip = (pad * 4).div_ceil(3) + 1;
            let keep = enc.len().saturating_sub(skip + 4);
            if keep >= 8 {
                out.push(enc.as_bytes()[skip..skip + keep].to_vec());
            }
        }
    }
    out
}

pub(crate) fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn canaries_never_reach_the_disk_or_the_logs() {
    let (dir, key) = initialised();
    let server = Server::start(dir.path(), &[]);
    let http = client();
    let tag = format!("{:08x}", std::process::id() ^ 0x5eed_cafe);
    let name = format!("Canaryname Q{tag}");
    let email = format!("canary.{tag}@Canary-Domain.example");
    let notes = format!("canary-notes-{tag} lives at the bottom of the sea");
    let street = format!("{tag} Canary Wharf Lane");
    let phone = "+44 20 7946 0371";
    let body = json!({"fields": {
        "name": name, "email": email, "phone": phone, "notes": notes, "birth_date": "1903-07-14",
        "address": {"lines": [street], "locality": "Canarytown", "country": "GB"}
    }});
    let r = http
        .post(server.url("/v1/collections/customers/records"))
        .bearer_auth(&key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Read, search, change and fail, so every path that could log has run.
    for purpose in ["billing", "support", "marketing", "analytics"] {
        let r = http
            .get(server.url(&format!(
                "/v1/collections/customers/records/{id}?purpose={purpose}"
            )))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    let r = http
        .get(server.url("/v1/collections/customers/records"))
        .query(&[("purpose", "support"), ("email", email.as_str())])
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["records"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let r = http
        .get(server.url("/v1/collections/customers/records"))
        .query(&[("purpose", "support"), ("phone", phone)])
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let patch = json!({"fields": {"notes": format!("{notes} and moved")}});
    let r = http
        .patch(server.url(&format!("/v1/collections/customers/records/{id}")))
        .bearer_auth(&key)
        .json(&patch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let bad = json!({"fields": {"email": format!("{name}@localhost"), "phone": notes}});
    let r = http
        .post(server.url("/v1/collections/customers/records"))
        .bearer_auth(&key)
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let r = http
        .get(server.url("/v1/collections/customers/records"))
        .query(&[("purpose", "support"), ("email", notes.as_str())])
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let log = server.stop();
    assert!(
        log.contains("request"),
        "the server logged requests at debug level: {log}"
    );
    let v = custos(dir.path(), &["audit", "verify"]);
    assert!(v.status.success(), "{}", stderr(&v));

    let canaries = [
        name.clone(),
        email.clone(),
        email.to_lowercase(),
        format!("canary.{tag}@canary-domain.example"),
        notes.clone(),
        street.clone(),
        "Canarytown".to_owned(),
        "+442079460371".to_owned(),
        "20 7946 0371".to_owned(),
        "1903-07-14".to_owned(),
    ];
    let mut haystacks: Vec<(String, Vec<u8>)> = files_under(dir.path())
        .into_iter()
        .filter(|p| !p.ends_with("custos.toml"))
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    assert!(
        haystacks
            .iter()
            .any(|(p, b)| p.ends_with("custos.db") && b.len() > 4096)
    );
    haystacks.push(("server log".into(), log.into_bytes()));
    for c in &canaries {
        for form in forms(c) {
            for (path, bytes) in &haystacks {
                assert!(
                    !bytes.windows(form.len()).any(|w| w == form.as_slice()),
                    "{path} holds a form of a personal value ({})",
                    String::from_utf8_lossy(&form)
                );
            }
        }
    }
}

#[test]
fn the_scan_finds_what_it_looks_for() {
    // The scanner itself must be able to fail: each form of a value is found where it is.
    let v = "canary-selftest-1234";
    for form in forms(v) {
        let hay = [b"xx".as_slice(), &form, b"yy"].concat();
        assert!(hay.windows(form.len()).any(|w| w == form.as_slice()));
    }
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{{\"notes\":\"{v}\"}}"));
    assert!(
        forms(v)
            .iter()
            .skip(3)
            .any(|f| b64.as_bytes().windows(f.len()).any(|w| w == f.as_slice())),
        "{b64}"
    );
}
