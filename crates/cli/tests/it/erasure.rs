//! Crypto-shredding, checked in the bytes: a copy of the database taken before an erasure holds
//! ciphertext that no key left in the store can open, and the erasure list survives `db copy`
//! (issue 9).

use custos_core::crypto::{FieldBinding, RootKey, WrapContext};
use custos_core::ids::{RecordId, SubjectId};
use custos_core::personal::fields_of;
use custos_vault::{Paths, Principal, Vault};

use crate::{custos, initialised, stdout};

/// Every (record, field, ciphertext) of a subject, as the database file holds them.
fn ciphertexts(db: &rusqlite::Connection, subject: SubjectId) -> Vec<(RecordId, String, Vec<u8>)> {
    let mut s = db
        .prepare("SELECT id, fields FROM records WHERE subject_id = ?1")
        .unwrap();
    let rows: Vec<(String, Vec<u8>)> = s
        .query_map([subject.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    rows.into_iter()
        .flat_map(|(id, fields)| {
            let id: RecordId = id.parse().unwrap();
            custos_store::decode_fields(&fields)
                .unwrap()
                .into_iter()
                .map(move |(f, ct)| (id, f, ct))
        })
        .collect()
}

#[tokio::test]
async fn no_key_left_in_the_store_opens_an_erased_subjects_old_ciphertext() {
    let (dir, _) = initialised();
    let paths = Paths::in_dir(dir.path());
    let vault = Vault::open(&paths).await.unwrap();
    let body = |v: serde_json::Value| fields_of(v.as_object().unwrap().clone());
    let erased = vault
        .put_record(
            &Principal::Cli,
            "customers",
            None,
            &body(serde_json::json!({"email": "shred.me@example.com", "name": "Shred Me"})),
        )
        .await
        .unwrap();
    vault
        .put_record(
            &Principal::Cli,
            "customers",
            Some(erased.subject_id),
            &body(serde_json::json!({"email": "shred.too@example.com"})),
        )
        .await
        .unwrap();
    let other = vault
        .put_record(
            &Principal::Cli,
            "customers",
            None,
            &body(serde_json::json!({"email": "stays@example.com"})),
        )
        .await
        .unwrap();

    let db = rusqlite::Connection::open(dir.path().join("custos.db")).unwrap();
    let old = ciphertexts(&db, erased.subject_id);
    assert_eq!(old.len(), 3);
    let root =
        RootKey::from_file_contents(&std::fs::read_to_string(dir.path().join("root.key")).unwrap())
            .unwrap();
    let open = |key: &custos_core::crypto::DataKey| {
        old.iter().any(|(id, field, ct)| {
            key.decrypt_field(
                FieldBinding {
                    record: *id,
                    collection: "customers",
                    field,
                },
                ct,
            )
            .is_ok()
        })
    };
    let keys = |db: &rusqlite::Connection| -> Vec<(String, Vec<u8>)> {
        let mut s = db
            .prepare("SELECT subject_id, wrapped FROM subject_keys")
            .unwrap();
        s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    // Before: the subject's own key opens its ciphertext (the check can succeed).
    let before = keys(&db);
    assert!(before.iter().any(|(s, w)| {
        let s: SubjectId = s.parse().unwrap();
        root.unwrap(WrapContext::Subject(s), w)
            .is_ok_and(|k| open(&k))
    }));

    vault
        .erase_subject(&Principal::Cli, erased.subject_id)
        .await
        .unwrap();

    // After: the subject's key row is gone, and no key left, unwrapped under any subject,
    // opens any of the old ciphertexts.
    let after = keys(&db);
    assert_eq!(after.len(), before.len() - 1);
    assert!(
        !after
            .iter()
            .any(|(s, _)| *s == erased.subject_id.to_string())
    );
    for (s, w) in &after {
        for subject in [s.parse::<SubjectId>().unwrap(), erased.subject_id] {
            if let Ok(k) = root.unwrap(WrapContext::Subject(subject), w) {
                assert!(!open(&k), "a key left in the store opens erased data");
            }
        }
    }
    assert!(ciphertexts(&db, erased.subject_id).is_empty());
    assert_eq!(ciphertexts(&db, other.subject_id).len(), 1);
    drop(vault);

    // The erasure list names the subject, and nothing personal.
    let o = custos(dir.path(), &["erasures", "list", "--json"]);
    assert!(o.status.success());
    let list: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(list[0]["subject_id"], erased.subject_id.to_string());
    assert!(!stdout(&o).contains("shred"));

    // It travels with `db copy` to another database file.
    let copy = dir.path().join("copy.db");
    let o = custos(
        dir.path(),
        &[
            "db",
            "copy",
            "--to",
            &format!("sqlite://{}", copy.display()),
        ],
    );
    assert!(o.status.success(), "{}", crate::stderr(&o));
    let n: i64 = rusqlite::Connection::open(&copy)
        .unwrap()
        .query_row("SELECT count(*) FROM erasure_log", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
}
