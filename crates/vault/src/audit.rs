//! The audit log: sequencing queued entries into the RFC 6962 tree, signed heads, inclusion
//! proofs, and verification of everything stored.
//!
//! Writers only queue entries (in the transaction of the change they describe). One
//! sequencer at a time takes the queue in order, gives each entry its index, appends it to the
//! tree and signs the new head, all in one transaction: the Trillian split between queueing
//! and sequencing, so the log never serialises the write path.

use custos_core::audit::{Action, AuditEntry, Outcome, TreeHead};
use std::collections::HashMap;

use custos_core::ids::{EventId, SubjectId};
use custos_core::merkle::{self, CompactRange, Hash};
use custos_store::{CopyRow, Integration, LeafRow, StoreError, Table, TreeState};
use serde::Serialize;

use custos_core::principal::Act;

use crate::{Principal, Vault, VaultError};

/// Entries integrated per sequencing batch.
pub(crate) const BATCH: usize = 1024;
/// Leaves read per page while verifying.
const PAGE: u64 = 10_000;

/// A sequenced entry.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    /// Its index in the log.
    pub index: u64,
    /// The entry.
    pub entry: AuditEntry,
}

/// The current signed tree head and the key to check it with.
#[derive(Debug, Clone, Serialize)]
pub struct HeadView {
    /// Entries in the tree.
    pub size: u64,
    /// The root hash, hex.
    pub root_hash: String,
    /// When it was signed, ms since the epoch.
    pub timestamp_ms: u64,
    /// Ed25519 signature over the head, hex.
    pub signature: String,
    /// The log's Ed25519 public key, hex.
    pub public_key: String,
}

/// An inclusion proof of one entry against the current head.
#[derive(Debug, Clone, Serialize)]
pub struct AuditProof {
    /// The entry's index.
    pub index: u64,
    /// The tree size the proof is against.
    pub tree_size: u64,
    /// The root hash at that size, hex.
    pub root_hash: String,
    /// The entry's bytes (the leaf input), as UTF-8 JSON.
    pub entry: String,
    /// The leaf hash, hex.
    pub leaf_hash: String,
    /// The audit path, hex, leaf to root.
    pub proof: Vec<String>,
}

/// A verified log.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// Entries verified.
    pub size: u64,
    /// The recomputed root hash, hex.
    pub root_hash: String,
    /// Signed heads checked against the recomputed tree.
    pub heads_checked: usize,
}

/// The first thing wrong with the stored log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit log entry {index}: {what}")]
pub struct AuditFault {
    /// The first bad index.
    pub index: u64,
    /// What is wrong there.
    pub what: String,
}

fn head_view(
    sth: &custos_core::audit::SignedTreeHead,
    key: &custos_core::audit::VerifyingKey,
) -> HeadView {
    HeadView {
        size: sth.head.size,
        root_hash: hex::encode(sth.head.root),
        timestamp_ms: sth.head.timestamp_ms,
        signature: hex::encode(sth.signature),
        public_key: hex::encode(key.to_bytes()),
    }
}

impl Vault {
    /// Integrates queued entries into the tree: one batch, in queue order. Returns how many.
    ///
    /// # Errors
    /// When the store fails or a queued entry is unreadable.
    pub async fn sequence_audit(&self) -> Result<usize, VaultError> {
        let _one_at_a_time = self.sequencer.lock().await;
        let queued = self.store.queued_audit(BATCH).await?;
        if queued.is_empty() {
            return Ok(0);
        }
        let state = self.store.tree_state().await?;
        let mut range = CompactRange::from_parts(state.size, state.peaks).map_err(|e| {
            VaultError::Integrity(format!("the stored tree state is inconsistent: {e}"))
        })?;
        let from_size = range.size();
        let mut leaves = Vec::with_capacity(queued.len());
        let mut queue_ids = Vec::with_capacity(queued.len());
        for q in queued {
            let mut entry = AuditEntry::from_bytes(&q.audit.entry).map_err(|_| {
                VaultError::Integrity(format!("queued audit entry {} is unreadable", q.queue_id))
            })?;
            let index = range.size();
            entry.index = Some(index);
            let bytes = entry.to_bytes();
            let leaf_hash = merkle::leaf_hash(&bytes);
            range.append(leaf_hash);
            leaves.push(LeafRow {
                index,
                subject_id: q.audit.subject_id,
                entry: bytes,
                leaf_hash,
            });
            queue_ids.push(q.queue_id);
        }
        let n = leaves.len();
        let head = TreeHead {
            size: range.size(),
            root: range.root(),
            timestamp_ms: self.now_ms().max(0) as u64,
        }
        .sign(&self.keys.signer);
        let state = TreeState {
            size: range.size(),
            peaks: range.peaks().to_vec(),
        };
        match self
            .store
            .integrate_audit(Integration {
                from_size,
                queue_ids,
                leaves,
                state,
                head,
            })
            .await
        {
            Ok(()) => Ok(n),
            // Another sequencer integrated first; the next round picks up what is left.
            Err(StoreError::Conflict(_)) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }

    /// The newest signed tree head, after integrating what is queued.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn audit_head(&self) -> Result<HeadView, VaultError> {
        self.sequence_audit().await?;
        let sth = match self.store.latest_tree_head().await? {
            Some(h) => h,
            None => TreeHead {
                size: 0,
                root: merkle::empty_root(),
                timestamp_ms: self.now_ms().max(0) as u64,
            }
            .sign(&self.keys.signer),
        };
        Ok(head_view(&sth, &self.keys.signer.verifying_key()))
    }

    /// The log's Ed25519 public key, hex: it signs tree heads, consent receipts and erasure
    /// certificates. Public: verifiers pin it to check those offline.
    pub fn log_public_key(&self) -> String {
        hex::encode(self.keys.signer.verifying_key().to_bytes())
    }

    /// An inclusion proof of entry `index` against the newest signed head. Admin only: the
    /// proof carries the entry.
    ///
    /// # Errors
    /// `Forbidden` without `read_audit`; `NotFound` when the index is not in the signed tree.
    pub async fn audit_proof(&self, p: &Principal, index: u64) -> Result<AuditProof, VaultError> {
        self.authorize(p, &Act::ReadAudit)?;
        self.sequence_audit().await?;
        Ok(self.proof_of(index).await?.0)
    }

    /// An inclusion proof of entry `index` against the newest signed head, and that head.
    pub(crate) async fn proof_of(
        &self,
        index: u64,
    ) -> Result<(AuditProof, custos_core::audit::SignedTreeHead), VaultError> {
        let sth = self
            .store
            .latest_tree_head()
            .await?
            .ok_or(VaultError::NotFound("audit entry"))?;
        let size = sth.head.size;
        if index >= size {
            return Err(VaultError::NotFound("audit entry"));
        }
        let mut hashes: Vec<Hash> = Vec::with_capacity(size as usize);
        let mut entry = Vec::new();
        let mut from = 0;
        while from < size {
            let to = (from + PAGE).min(size);
            for l in self.store.leaves(from, to).await? {
                if l.index == index {
                    entry = l.entry;
                }
                hashes.push(l.leaf_hash);
            }
            from = to;
        }
        let proof = merkle::inclusion_proof(index, &hashes)
            .map_err(|e| VaultError::Internal(e.to_string()))?;
        if merkle::root(&hashes) != sth.head.root {
            return Err(VaultError::Integrity(
                "the stored leaves do not match the signed head: run custos audit verify".into(),
            ));
        }
        let proof = AuditProof {
            index,
            tree_size: size,
            root_hash: hex::encode(sth.head.root),
            entry: String::from_utf8_lossy(&entry).into_owned(),
            leaf_hash: hex::encode(hashes[index as usize]),
            proof: proof.iter().map(hex::encode).collect(),
        };
        Ok((proof, sth))
    }

    /// The index of the subject's first integrated audit entry that `matches`, integrating
    /// what is queued if none is found yet. Another server's sequencer may be integrating at
    /// the same time: its win is ours too.
    pub(crate) async fn find_subject_entry(
        &self,
        subject: SubjectId,
        matches: impl Fn(&AuditEntry) -> bool,
    ) -> Result<Option<u64>, VaultError> {
        for attempt in 0..3 {
            let found = self
                .store
                .subject_leaves(subject)
                .await?
                .into_iter()
                .find(|l| AuditEntry::from_bytes(&l.entry).is_ok_and(|e| matches(&e)))
                .map(|l| l.index);
            if found.is_some() || attempt == 2 {
                return Ok(found);
            }
            loop {
                match self.sequence_audit().await {
                    Ok(n) if n >= BATCH => continue,
                    Ok(_) | Err(VaultError::Conflict(_)) => break,
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(None)
    }

    /// Entry `index` as a signed document carries it: the entry, its inclusion proof and the
    /// newest signed head; with the entry read back.
    pub(crate) async fn log_proof(
        &self,
        index: u64,
    ) -> Result<(custos_core::signed::LogProof, AuditEntry), VaultError> {
        let (proof, sth) = self.proof_of(index).await?;
        let entry = AuditEntry::from_bytes(proof.entry.as_bytes())
            .map_err(|_| VaultError::Integrity("an audit entry is unreadable".into()))?;
        let log = custos_core::signed::LogProof {
            leaf_index: index,
            entry: proof.entry,
            inclusion_proof: proof.proof,
            tree_size: proof.tree_size,
            root_hash: proof.root_hash,
            timestamp_ms: sth.head.timestamp_ms,
            signature: hex::encode(sth.signature),
        };
        Ok((log, entry))
    }

    /// The audit trail of one subject. Admin only; the reading is itself audited.
    ///
    /// # Errors
    /// `Forbidden` without `read_audit`.
    pub async fn audit_trail(
        &self,
        p: &Principal,
        subject: SubjectId,
    ) -> Result<Vec<AuditRecord>, VaultError> {
        self.authorize(p, &Act::ReadAudit)?;
        self.sequence_audit().await?;
        let leaves = self.store.subject_leaves(subject).await?;
        let mut e = AuditEntry::new(p.actor(), Action::AuditRead, Outcome::Ok);
        e.subject_id = Some(subject);
        self.store
            .append_audit(vec![custos_store::QueuedAudit {
                subject_id: Some(subject),
                entry: e.to_bytes(),
            }])
            .await?;
        leaves
            .into_iter()
            .map(|l| {
                let entry = AuditEntry::from_bytes(&l.entry).map_err(|_| {
                    VaultError::Integrity(format!("audit entry {} is unreadable", l.index))
                })?;
                Ok(AuditRecord {
                    index: l.index,
                    entry,
                })
            })
            .collect()
    }

    /// Recomputes the tree over every stored entry and checks every signed head, after
    /// integrating what is queued. `Ok(Err(fault))` names the first bad index.
    ///
    /// # Errors
    /// When the store fails (a fault in the log is not an error of this call).
    pub async fn verify_audit(
        &self,
        p: &Principal,
    ) -> Result<Result<VerifyReport, AuditFault>, VaultError> {
        self.authorize(p, &Act::ReadAudit)?;
        while self.sequence_audit().await? >= BATCH {}
        let heads = self.store.tree_heads().await?;
        let state = self.store.tree_state().await?;
        let key = self.keys.signer.verifying_key();
        let end = heads.last().map_or(0, |h| h.head.size).max(state.size);
        let mut range = CompactRange::new();
        let mut heads_iter = heads.iter().peekable();
        let mut last_checked = 0u64;
        let fault = |index: u64, what: String| Ok(Err(AuditFault { index, what }));
        // Every consent event the log holds: its entry as queued (index cleared), hashed.
        let mut ledger: HashMap<EventId, (u64, Hash)> = HashMap::new();
        let mut from = 0u64;
        loop {
            let page = self.store.leaves(from, from + PAGE).await?;
            if page.is_empty() {
                break;
            }
            for l in &page {
                let i = range.size();
                if l.index != i {
                    return fault(i, format!("missing: the next stored entry is {}", l.index));
                }
                if merkle::leaf_hash(&l.entry) != l.leaf_hash {
                    return fault(i, "changed: its bytes no longer match its leaf hash".into());
                }
                match AuditEntry::from_bytes(&l.entry) {
                    Ok(mut e) if e.index == Some(i) => {
                        if let Some(id) = e.consent.as_ref().map(|c| c.id) {
                            e.index = None;
                            ledger.insert(id, (i, merkle::leaf_hash(&e.to_bytes())));
                        }
                    }
                    Ok(e) => {
                        return fault(
                            i,
                            format!("out of place: it was sequenced as entry {:?}", e.index),
                        );
                    }
                    Err(_) => return fault(i, "unreadable".into()),
                }
                range.append(l.leaf_hash);
                while let Some(h) = heads_iter.peek() {
                    if h.head.size > range.size() {
                        break;
                    }
                    if h.head.size == range.size() {
                        if h.verify(&key).is_err() {
                            return fault(
                                i,
                                format!(
                                    "the signature on the tree head of size {} does not verify",
                                    h.head.size
                                ),
                            );
                        }
                        if h.head.root != range.root() {
                            return fault(
                                last_checked,
                                format!(
                                    "the signed head of size {} does not match the stored entries: one of entries {}..{} was changed",
                                    h.head.size, last_checked, h.head.size
                                ),
                            );
                        }
                        last_checked = h.head.size;
                    }
                    heads_iter.next();
                }
            }
            from += PAGE;
        }
        let size = range.size();
        if size < end {
            return fault(
                size,
                format!("missing: the log should hold {end} entries but holds {size}"),
            );
        }
        if size > state.size {
            return fault(
                state.size,
                "an entry was added outside the sequencer".into(),
            );
        }
        if range.peaks() != state.peaks.as_slice() {
            return fault(
                last_checked,
                "the stored tree state does not match the stored entries".into(),
            );
        }
        if let Some(f) = self.verify_ledger(ledger, size).await? {
            return Ok(Err(f));
        }
        Ok(Ok(VerifyReport {
            size,
            root_hash: hex::encode(range.root()),
            heads_checked: heads.len(),
        }))
    }
}

impl Vault {
    /// Checks the consent ledger against the log: every stored event is, byte for byte, the
    /// event of an audit entry, and every event the log holds is still in the ledger. So an
    /// event changed or deleted in the ledger's table is found like a changed log entry.
    async fn verify_ledger(
        &self,
        mut logged: HashMap<EventId, (u64, Hash)>,
        size: u64,
    ) -> Result<Option<AuditFault>, VaultError> {
        let canonical = |entry: &[u8]| {
            AuditEntry::from_bytes(entry)
                .ok()
                .map(|e| merkle::leaf_hash(&e.to_bytes()))
        };
        let mut unlogged = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .store
                .export(Table::ConsentEvents, after, PAGE as usize)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.cursor());
            for row in page {
                let CopyRow::Consent(row) = row else { continue };
                let hash = canonical(&row.entry);
                match logged.remove(&row.id) {
                    Some((_, h)) if Some(h) == hash => {}
                    Some((index, _)) => {
                        return Ok(Some(AuditFault {
                            index,
                            what: format!(
                                "consent event {} in the ledger was changed: it no longer matches its audit entry",
                                row.id
                            ),
                        }));
                    }
                    None => unlogged.push((row.id, hash)),
                }
            }
        }
        if let Some((id, (index, _))) = logged.into_iter().min_by_key(|(_, (i, _))| *i) {
            return Ok(Some(AuditFault {
                index,
                what: format!("consent event {id} was deleted from the ledger"),
            }));
        }
        if !unlogged.is_empty() {
            // Recorded while this check ran: its entry is queued or just sequenced.
            let mut recent: Vec<Hash> = Vec::new();
            for q in self.store.queued_audit(usize::MAX >> 1).await? {
                recent.extend(canonical(&q.audit.entry));
            }
            for l in self.store.leaves(size, size + PAGE).await? {
                if let Ok(mut e) = AuditEntry::from_bytes(&l.entry) {
                    e.index = None;
                    recent.push(merkle::leaf_hash(&e.to_bytes()));
                }
            }
            if let Some((id, _)) = unlogged
                .iter()
                .find(|(_, h)| h.is_none_or(|h| !recent.contains(&h)))
            {
                return Ok(Some(AuditFault {
                    index: size,
                    what: format!(
                        "consent event {id} has no audit entry: it was added outside the ledger"
                    ),
                }));
            }
        }
        Ok(None)
    }

    /// The number of entries integrated into the tree.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn audit_size(&self) -> Result<u64, VaultError> {
        Ok(self.store.tree_state().await?.size)
    }
}
