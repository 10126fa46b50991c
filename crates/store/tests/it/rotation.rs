//! Key rotation on every backend: keys counted per root key version, re-wrapped only while
//! they are as read, progress kept with the rotation, and a version retired only once it
//! wraps nothing.

use std::sync::Arc;

use custos_store::testing::wrapped_key;
use custos_store::{KeyOwner, Rewrap, RotationKind, Store, StoreError};

use crate::suite::{audit, insert};

fn again(w: &custos_store::WrappedKey, tag: u8) -> Rewrap {
    Rewrap {
        old: w.clone(),
        new: wrapped_key(2, tag),
        new_version: 2,
    }
}

pub(crate) async fn keys_are_rewrapped_once_and_a_version_retires_empty(store: Arc<dyn Store>) {
    for d in 1..=3 {
        insert(store.as_ref(), d).await;
    }
    store
        .insert_vault_key("index", wrapped_key(1, 7))
        .await
        .unwrap();
    store
        .insert_vault_key("audit-signing", wrapped_key(1, 8))
        .await
        .unwrap();
    assert_eq!(store.wrapped_per_version().await.unwrap(), vec![(1, 5)]);

    for claimed in [true, false] {
        assert_eq!(
            store
                .add_root_version(2, 10, audit("root.add", None))
                .await
                .unwrap(),
            claimed,
            "a version is claimed once"
        );
    }
    let versions = store.root_versions().await.unwrap();
    assert_eq!(versions.len(), 1, "{versions:?}");
    assert_eq!((versions[0].version, versions[0].retired_ms), (2, None));

    let rotation = store
        .start_rotation(RotationKind::Root, 2, 10, 5)
        .await
        .unwrap();
    assert!(matches!(
        store.start_rotation(RotationKind::Root, 2, 11, 5).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.open_rotation(RotationKind::Root).await.unwrap(),
        Some(rotation.clone())
    );

    let first = store.wrapped_below(2, 3).await.unwrap();
    assert_eq!(first.len(), 3);
    assert!(
        matches!(first[0].owner, KeyOwner::Named(_))
            && matches!(first[1].owner, KeyOwner::Named(_)),
        "named keys come first: {:?}",
        first.iter().map(|w| &w.owner).collect::<Vec<_>>()
    );
    let batch: Vec<Rewrap> = first.iter().map(|w| again(w, 9)).collect();
    assert_eq!(store.rewrap(rotation.id, batch.clone()).await.unwrap(), 3);
    // The same batch again finds nothing as it was read: nothing is replaced twice.
    assert_eq!(store.rewrap(rotation.id, batch).await.unwrap(), 0);
    assert_eq!(
        store.wrapped_per_version().await.unwrap(),
        vec![(1, 2), (2, 3)]
    );

    match store
        .retire_root_version(1, 20, audit("root.retire", None))
        .await
    {
        Err(StoreError::Conflict(m)) => assert!(m.contains("still wraps 2"), "{m}"),
        other => panic!("retiring a version in use: {other:?}"),
    }

    let rest = store.wrapped_below(2, 10).await.unwrap();
    assert_eq!(rest.len(), 2);
    let batch = rest.iter().map(|w| again(w, 10)).collect();
    assert_eq!(store.rewrap(rotation.id, batch).await.unwrap(), 2);
    assert!(store.wrapped_below(2, 10).await.unwrap().is_empty());
    assert_eq!(store.wrapped_per_version().await.unwrap(), vec![(2, 5)]);
    // A key written wrapped by version 2 is counted under it, as every insert says.
    store
        .insert_vault_key("portal", wrapped_key(2, 11))
        .await
        .unwrap();
    assert_eq!(store.wrapped_per_version().await.unwrap(), vec![(2, 6)]);
    assert_eq!(
        store
            .open_rotation(RotationKind::Root)
            .await
            .unwrap()
            .unwrap()
            .done,
        5
    );

    store
        .finish_rotation(rotation.id, 30, audit("rotate.finish", None))
        .await
        .unwrap();
    assert!(matches!(
        store
            .finish_rotation(rotation.id, 31, audit("rotate.finish", None))
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.open_rotation(RotationKind::Root).await.unwrap(), None);
    assert_eq!(
        store
            .last_rotation(RotationKind::Root)
            .await
            .unwrap()
            .unwrap()
            .finished_ms,
        Some(30)
    );

    store
        .retire_root_version(1, 40, audit("root.retire", None))
        .await
        .unwrap();
    let versions = store.root_versions().await.unwrap();
    assert_eq!(
        versions
            .iter()
            .map(|v| (v.version, v.retired_ms))
            .collect::<Vec<_>>(),
        vec![(1, Some(40)), (2, None)]
    );
}
