//! Subjects' data keys replaced, on every backend: subjects found by their key's age, one
//! rekeyed whole in one transaction (its records, requests and messages sealed again, its key
//! replaced, the rotation counted), a write sealed under the replaced key refused, a subject
//! with a message being delivered left for later, and a bad reseal changing nothing.

use std::sync::Arc;

use custos_core::ids::{MailId, RequestId, SubjectId};
use custos_core::rights::{RequestKind, RequestStatus};
use custos_store::testing::wrapped_key;
use custos_store::{
    NewRecord, NewSubject, OutboxRow, RecordChange, Rekeyed, RequestRow, Reseal, RotationKind,
    Store, StoreError, SubjectSecrets,
};

use crate::suite::{audit, row};

/// Something sealed under data-key version `v`: the vault's header, then bytes.
fn sealed(v: u32, tag: u8) -> Vec<u8> {
    wrapped_key(v, tag)
}

async fn subject_with(
    store: &dyn Store,
    created_ms: i64,
) -> (SubjectId, Vec<custos_store::RecordRow>) {
    let subject = SubjectId::random();
    let first = row(
        subject,
        &[("email", &sealed(1, 1)), ("name", &sealed(1, 2))],
    );
    store
        .insert_record(NewRecord {
            record: first.clone(),
            new_subject: Some(NewSubject {
                id: subject,
                wrapped_key: wrapped_key(1, 0xaa),
                created_ms,
            }),
            index: vec![],
            audit: audit("create", Some(subject)),
        })
        .await
        .unwrap();
    let second = row(subject, &[("email", &sealed(1, 3))]);
    store
        .insert_record(NewRecord {
            record: second.clone(),
            new_subject: None,
            index: vec![],
            audit: audit("create", Some(subject)),
        })
        .await
        .unwrap();
    (subject, vec![first, second])
}

fn request(subject: SubjectId, reason: Vec<u8>) -> RequestRow {
    RequestRow {
        id: RequestId::random(),
        subject_id: subject,
        kind: RequestKind::Access,
        status: RequestStatus::Received,
        due_ms: 1_000,
        received_ms: 10,
        closed_ms: None,
        version: 1,
        body: b"{}".to_vec(),
        reasons: [("rejection_reason".to_owned(), reason)]
            .into_iter()
            .collect(),
    }
}

/// Seals everything again under version 2, as the vault would: every ciphertext replaced by
/// one of the new version (its tag kept, so a test sees which was which).
fn to_version_2() -> Reseal {
    Arc::new(|old: SubjectSecrets| {
        let again = |ct: &Vec<u8>| sealed(2, ct[ct.len() - 1]);
        Ok(SubjectSecrets {
            key_version: 2,
            wrapped_key: wrapped_key(1, 0xbb),
            records: old
                .records
                .iter()
                .map(|(id, c, f)| {
                    (
                        *id,
                        c.clone(),
                        f.iter().map(|(k, v)| (k.clone(), again(v))).collect(),
                    )
                })
                .collect(),
            requests: old
                .requests
                .iter()
                .map(|(id, f)| (*id, f.iter().map(|(k, v)| (k.clone(), again(v))).collect()))
                .collect(),
            mail: old.mail.iter().map(|(id, m)| (*id, again(m))).collect(),
            ..old
        })
    })
}

pub(crate) async fn a_subject_is_rekeyed_whole_and_a_stale_write_is_refused(store: Arc<dyn Store>) {
    let (subject, records) = subject_with(store.as_ref(), 5).await;
    let (younger, _) = subject_with(store.as_ref(), 50).await;
    let req = request(subject, sealed(1, 4));
    store
        .insert_request(req.clone(), audit("request", Some(subject)))
        .await
        .unwrap();
    // A message sent before keeps no sealed text; one still queued is sealed again.
    let sent = MailId::random();
    store
        .enqueue_mail(OutboxRow::queued(
            sent,
            Some(subject),
            1,
            10_000,
            sealed(1, 7),
        ))
        .await
        .unwrap();
    let claimed = store.claim_mail("server-a", 2, 3, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    store.mail_sent(sent, "server-a", 4).await.unwrap();
    let mail = MailId::random();
    store
        .enqueue_mail(OutboxRow::queued(
            mail,
            Some(subject),
            10,
            10_000,
            sealed(1, 5),
        ))
        .await
        .unwrap();

    assert_eq!(
        store.keyed_before(10, None, 10).await.unwrap(),
        vec![(5, subject)]
    );
    assert_eq!(store.count_keyed_before(100).await.unwrap(), 2);
    let both = store.keyed_before(100, None, 10).await.unwrap();
    assert_eq!(both, vec![(5, subject), (50, younger)], "oldest key first");
    assert_eq!(
        store.keyed_before(100, Some(both[0]), 10).await.unwrap(),
        vec![(50, younger)],
        "after a cursor"
    );

    let rotation = store
        .start_rotation(RotationKind::Subjects, 0, 20, 1)
        .await
        .unwrap();
    // A reseal that drops a row is refused, and changes nothing.
    let dropping: Reseal = Arc::new(|mut s: SubjectSecrets| {
        s.key_version = 2;
        s.records.pop();
        Ok(s)
    });
    assert!(
        store
            .rekey_subject(rotation.id, subject, 10, 20, dropping)
            .await
            .is_err()
    );
    let got = store
        .record("customers", records[0].id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.record.fields, records[0].fields, "nothing changed");

    assert_eq!(
        store
            .rekey_subject(rotation.id, subject, 10, 20, to_version_2())
            .await
            .unwrap(),
        Rekeyed::Done
    );
    for r in &records {
        let got = store.record("customers", r.id).await.unwrap().unwrap();
        assert_eq!(
            got.wrapped_key,
            wrapped_key(1, 0xbb),
            "the new key with every record"
        );
        for (name, ct) in &got.record.fields {
            assert_eq!(ct[1..5], [0, 0, 0, 2], "{name} sealed again");
            assert_eq!(ct.last(), r.fields[name].last(), "{name} is its own value");
        }
        assert_eq!(
            got.record.version, r.version,
            "a record's version is its own, not the key's"
        );
    }
    assert_eq!(
        store.request(req.id).await.unwrap().unwrap().reasons["rejection_reason"],
        sealed(2, 4)
    );
    assert_eq!(
        store.subject_key(subject).await.unwrap(),
        Some(wrapped_key(1, 0xbb))
    );
    assert_eq!(
        store
            .rekey_subject(rotation.id, subject, 10, 30, to_version_2())
            .await
            .unwrap(),
        Rekeyed::Skipped,
        "its key is new now"
    );
    assert_eq!(store.count_keyed_before(10).await.unwrap(), 0);
    let open = store
        .open_rotation(RotationKind::Subjects)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(open.done, 1);

    // Writes sealed under the replaced version are refused, and change nothing.
    let mut stale = records[0].clone();
    stale.fields.insert("email".into(), sealed(1, 9));
    let change = |record| RecordChange {
        record,
        reindexed_fields: vec![],
        index: vec![],
        audit: audit("update", Some(subject)),
    };
    assert!(matches!(
        store.update_record(change(stale.clone())).await,
        Err(StoreError::KeyChanged)
    ));
    let new_stale = row(subject, &[("email", &sealed(1, 9))]);
    assert!(matches!(
        store
            .insert_record(NewRecord {
                record: new_stale.clone(),
                new_subject: None,
                index: vec![],
                audit: audit("create", Some(subject)),
            })
            .await,
        Err(StoreError::KeyChanged)
    ));
    assert!(
        store
            .record("customers", new_stale.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        store
            .insert_request(
                request(subject, sealed(1, 9)),
                audit("request", Some(subject))
            )
            .await,
        Err(StoreError::KeyChanged)
    ));
    assert!(matches!(
        store
            .enqueue_mail(OutboxRow::queued(
                MailId::random(),
                Some(subject),
                10,
                10_000,
                sealed(1, 9)
            ))
            .await,
        Err(StoreError::KeyChanged)
    ));
    // Sealed under the new version, they go through.
    let mut fresh = records[0].clone();
    fresh.fields.insert("email".into(), sealed(2, 9));
    assert!(
        matches!(
            store.update_record(change(fresh.clone())).await,
            Err(StoreError::KeyChanged)
        ),
        "one field still under the old version: sealed across a rotation"
    );
    fresh.fields.insert("name".into(), sealed(2, 8));
    store.update_record(change(fresh)).await.unwrap();

    // A subject with a message being delivered is left for later, untouched.
    let mail2 = MailId::random();
    store
        .enqueue_mail(OutboxRow::queued(
            mail2,
            Some(younger),
            10,
            10_000,
            sealed(1, 6),
        ))
        .await
        .unwrap();
    let claimed = store.claim_mail("server-a", 60, 1_000, 10).await.unwrap();
    assert!(claimed.iter().any(|m| m.id == mail2));
    assert_eq!(
        store
            .rekey_subject(rotation.id, younger, 100, 70, to_version_2())
            .await
            .unwrap(),
        Rekeyed::Busy
    );
    assert!(
        store
            .keyed_before(100, None, 10)
            .await
            .unwrap()
            .contains(&(50, younger)),
        "still to do"
    );
    assert_eq!(
        store
            .rekey_subject(rotation.id, younger, 100, 2_000, to_version_2())
            .await
            .unwrap(),
        Rekeyed::Done,
        "once the lease has lapsed"
    );
}
