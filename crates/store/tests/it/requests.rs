//! The conformance tests of data-subject requests, written against `dyn Store` only.

use std::sync::Arc;

use custos_core::ids::{RequestId, SubjectId};
use custos_core::rights::{RequestKind, RequestStatus};
use custos_store::{CopyRow, RequestQuery, RequestRow, Store, StoreError, Table};

use crate::suite::{audit, insert};

fn request(
    subject: SubjectId,
    kind: RequestKind,
    status: RequestStatus,
    due_ms: i64,
) -> RequestRow {
    RequestRow {
        id: RequestId::random(),
        subject_id: subject,
        kind,
        status,
        due_ms,
        received_ms: due_ms - 100,
        closed_ms: status.is_closed().then_some(due_ms - 10),
        version: 1,
        body: format!("{{\"due\":{due_ms}}}").into_bytes(),
        reasons: [("rejection_reason".to_owned(), b"ct-reason".to_vec())]
            .into_iter()
            .collect(),
    }
}

fn ids(rows: &[RequestRow]) -> Vec<RequestId> {
    rows.iter().map(|r| r.id).collect()
}

async fn queued(store: &dyn Store) -> usize {
    store.queued_audit(1000).await.unwrap().len()
}

/// Requests are stored with their audit entry, for subjects that have a key only, and listed
/// in deadline order by every filter.
pub(crate) async fn requests_are_filed_and_listed_by_every_filter(store: Arc<dyn Store>) {
    use RequestKind::{Access, Erasure};
    use RequestStatus::{Completed, InProgress, Received, Rejected};
    let a = insert(store.as_ref(), 1).await.subject_id;
    let b = insert(store.as_ref(), 2).await.subject_id;
    let rows = [
        request(a, Access, Received, 500),
        request(b, Erasure, InProgress, 300),
        request(a, Erasure, Completed, 100),
        request(b, Access, Rejected, 400),
        request(a, Access, Received, 300),
    ];
    let before = queued(store.as_ref()).await;
    for r in &rows {
        store
            .insert_request(r.clone(), audit("file", Some(r.subject_id)))
            .await
            .unwrap();
    }
    assert_eq!(queued(store.as_ref()).await, before + rows.len());
    assert_eq!(
        store.request(rows[1].id).await.unwrap().as_ref(),
        Some(&rows[1])
    );
    assert_eq!(store.request(RequestId::random()).await.unwrap(), None);

    let list = |q: RequestQuery| {
        let store = Arc::clone(&store);
        async move {
            store
                .requests(&RequestQuery { limit: 100, ..q })
                .await
                .unwrap()
        }
    };
    // Deadline order, ties by id (both 300: ids are time-ordered, b's filed first).
    let all = list(RequestQuery::default()).await;
    assert_eq!(
        ids(&all),
        ids(&[
            rows[2].clone(),
            rows[1].clone(),
            rows[4].clone(),
            rows[3].clone(),
            rows[0].clone()
        ])
    );
    assert_eq!(all[0], rows[2], "a row reads back as written");
    let of_a = list(RequestQuery {
        subject: Some(a),
        ..Default::default()
    })
    .await;
    assert_eq!(ids(&of_a), [rows[2].id, rows[4].id, rows[0].id]);
    let open = list(RequestQuery {
        statuses: vec![Received, InProgress],
        ..Default::default()
    })
    .await;
    assert_eq!(ids(&open), [rows[1].id, rows[4].id, rows[0].id]);
    let erasures = list(RequestQuery {
        kind: Some(Erasure),
        ..Default::default()
    })
    .await;
    assert_eq!(ids(&erasures), [rows[2].id, rows[1].id]);
    let due = list(RequestQuery {
        due_by: Some(300),
        ..Default::default()
    })
    .await;
    assert_eq!(ids(&due), [rows[2].id, rows[1].id, rows[4].id]);
    let closed = list(RequestQuery {
        closed_before: Some(391),
        ..Default::default()
    })
    .await;
    assert_eq!(
        ids(&closed),
        [rows[2].id, rows[3].id],
        "open requests never closed"
    );
    let closed = list(RequestQuery {
        closed_before: Some(390),
        ..Default::default()
    })
    .await;
    assert_eq!(ids(&closed), [rows[2].id]);
    let both = list(RequestQuery {
        subject: Some(a),
        statuses: vec![Received],
        kind: Some(Access),
        due_by: Some(400),
        ..Default::default()
    })
    .await;
    assert_eq!(ids(&both), [rows[4].id]);
    // Pages: after where the last one ended, and no more than asked.
    let page = store
        .requests(&RequestQuery {
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&page), ids(&all[..2]));
    let last = page.last().unwrap();
    let next = list(RequestQuery {
        after: Some((last.due_ms, last.id)),
        ..Default::default()
    })
    .await;
    assert_eq!(ids(&next), ids(&all[2..]));

    // No key, no request: an unknown (or erased) subject's request leaves nothing.
    let stranger = request(SubjectId::random(), Access, Received, 1);
    let n = queued(store.as_ref()).await;
    assert!(matches!(
        store
            .insert_request(stranger.clone(), audit("no", None))
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.request(stranger.id).await.unwrap(), None);
    // An id is filed once.
    assert!(matches!(
        store
            .insert_request(rows[0].clone(), audit("again", Some(a)))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(queued(store.as_ref()).await, n);
}

/// A transition is an update guarded by the version read, committed with its audit entry; a
/// stale one conflicts and changes nothing. Deletion is guarded the same way.
pub(crate) async fn a_transition_commits_with_its_audit_entry_and_a_stale_one_conflicts(
    store: Arc<dyn Store>,
) {
    let s = insert(store.as_ref(), 3).await.subject_id;
    let r = request(s, RequestKind::Access, RequestStatus::Received, 1_000);
    store
        .insert_request(r.clone(), audit("file", Some(s)))
        .await
        .unwrap();
    let before = queued(store.as_ref()).await;
    let mut next = r.clone();
    next.status = RequestStatus::Extended;
    next.due_ms = 9_000;
    next.body = b"{\"extended\":true}".to_vec();
    next.reasons
        .insert("extension_reason".into(), b"ct-extension".to_vec());
    store
        .update_request(next.clone(), audit("extend", Some(s)))
        .await
        .unwrap();
    let got = store.request(r.id).await.unwrap().unwrap();
    assert_eq!(
        got,
        RequestRow {
            version: 2,
            ..next.clone()
        }
    );
    let q = store.queued_audit(1000).await.unwrap();
    assert_eq!(q.len(), before + 1);
    assert_eq!(q.last().unwrap().audit, audit("extend", Some(s)));

    // The version read was 1; it is 2 now.
    let mut stale = next.clone();
    stale.status = RequestStatus::Rejected;
    stale.closed_ms = Some(2_000);
    assert!(matches!(
        store.update_request(stale, audit("stale", Some(s))).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.request(r.id).await.unwrap().unwrap(),
        got,
        "unchanged"
    );
    let mut gone = next.clone();
    gone.id = RequestId::random();
    assert!(matches!(
        store.update_request(gone, audit("gone", Some(s))).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .delete_request(r.id, 1, audit("stale delete", Some(s)))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        queued(store.as_ref()).await,
        before + 1,
        "refusals queue nothing"
    );
    store
        .delete_request(r.id, 2, audit("delete", Some(s)))
        .await
        .unwrap();
    assert_eq!(store.request(r.id).await.unwrap(), None);
    assert!(matches!(
        store.delete_request(r.id, 2, audit("again", Some(s))).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(queued(store.as_ref()).await, before + 2);
}

/// `db copy` moves requests as stored, reasons still ciphertext, once however often it runs.
pub(crate) async fn requests_are_copied_as_stored(from: Arc<dyn Store>, to: Arc<dyn Store>) {
    let s = insert(from.as_ref(), 4).await.subject_id;
    let mut filed = Vec::new();
    for due in [50, 10, 30, 20, 40] {
        let r = request(s, RequestKind::Erasure, RequestStatus::Rejected, due);
        from.insert_request(r.clone(), audit("file", Some(s)))
            .await
            .unwrap();
        filed.push(r);
    }
    let mut exported = Vec::new();
    let mut after = None;
    loop {
        let page = from.export(Table::Requests, after, 2).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.cursor());
        exported.extend(page);
    }
    let mut by_id = filed.clone();
    by_id.sort_by_key(|r| r.id);
    assert_eq!(
        exported,
        by_id.into_iter().map(CopyRow::Request).collect::<Vec<_>>(),
        "every request, in id order"
    );
    to.import(exported[..2].to_vec()).await.unwrap();
    to.import(exported.clone()).await.unwrap();
    assert_eq!(to.count(Table::Requests).await.unwrap(), (5, 0));
    assert_eq!(from.count(Table::Requests).await.unwrap(), (5, 0));
    assert_eq!(
        to.request(filed[1].id).await.unwrap().as_ref(),
        Some(&filed[1])
    );
}
