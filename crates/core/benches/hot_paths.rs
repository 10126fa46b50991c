//! Micro-benchmarks of the hot paths: field encryption and decryption, blind-index digest,
//! Merkle append, the access decision, and an operator's login (Argon2id, the password
//! rules, a TOTP check).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use custos_core::access::{SubjectState, decide};
use custos_core::crypto::{DataKey, FieldBinding, RootKey, WrapContext};
use custos_core::ids::{RecordId, SubjectId};
use custos_core::inventory::{EXAMPLE, Inventory};
use custos_core::merkle::{CompactRange, leaf_hash};
use custos_core::principal::{Act, Principal, authorize};

fn crypto(c: &mut Criterion) {
    let key = DataKey::generate(1).unwrap();
    let record = RecordId::random();
    let at = FieldBinding {
        record,
        collection: "customers",
        field: "email",
    };
    let value = br#""ada.lovelace@example.com""#;
    let ct = key.encrypt_field(at, value);
    c.bench_function("encrypt_field (email, AES-256-GCM)", |b| {
        b.iter(|| key.encrypt_field(black_box(at), black_box(value)))
    });
    c.bench_function("decrypt_field (email, AES-256-GCM)", |b| {
        b.iter(|| key.decrypt_field(black_box(at), black_box(&ct)).unwrap())
    });
    let root = RootKey::generate(1).unwrap();
    let subject = SubjectId::random();
    let wrapped = root.wrap(WrapContext::Subject(subject), &key).unwrap();
    c.bench_function("unwrap subject key", |b| {
        b.iter(|| {
            root.unwrap(WrapContext::Subject(subject), black_box(&wrapped))
                .unwrap()
        })
    });
    let index = DataKey::generate(1).unwrap().into_index_key();
    c.bench_function("blind-index digest (HMAC-SHA256)", |b| {
        b.iter(|| {
            index.digest(
                black_box("customers"),
                black_box("email"),
                black_box("ada.lovelace@example.com"),
            )
        })
    });
}

fn merkle(c: &mut Criterion) {
    let mut range = CompactRange::new();
    for i in 0u64..1_000_000 {
        range.append(leaf_hash(&i.to_be_bytes()));
    }
    let entry = br#"{"index":1000000,"time":"2026-11-23T00:00:00.000Z","actor":"apikey:support","action":"record.read","collection":"customers","outcome":"ok"}"#;
    c.bench_function(
        "merkle append (leaf hash + compact range, 1M-leaf tree)",
        |b| {
            b.iter_batched(
                || range.clone(),
                |mut r| r.append(leaf_hash(black_box(entry))),
                criterion::BatchSize::SmallInput,
            )
        },
    );
    c.bench_function("merkle root (1M-leaf tree)", |b| {
        b.iter(|| black_box(&range).root())
    });
}

fn access(c: &mut Criterion) {
    let inv = Inventory::from_toml(EXAMPLE).unwrap();
    let agent = Principal::api_key("helpdesk", "support_agent");
    let purpose = inv.purpose("support").unwrap();
    let fields = &inv.collections["customers"].fields;
    let state = SubjectState::default();
    c.bench_function("access decision (one record, 8 fields)", |b| {
        b.iter(|| {
            let read = Act::Read {
                purpose: black_box(purpose),
                subject: None,
            };
            authorize(&agent, &read, &inv).unwrap();
            for decl in fields.values() {
                black_box(decide(black_box(purpose), decl, &state));
            }
        })
    });
}

fn operator(c: &mut Criterion) {
    use custos_core::operator::password::{self, Password};
    use custos_core::operator::totp::TotpSecret;
    let pw = Password::new("amber kettle rowing north".to_owned());
    let stored = password::hash(&pw).unwrap();
    let mut g = c.benchmark_group("operator");
    g.sample_size(20);
    g.bench_function("Argon2id hash (m=19 MiB, t=2, p=1)", |b| {
        b.iter(|| password::hash(black_box(&pw)).unwrap())
    });
    g.bench_function("Argon2id verify", |b| {
        b.iter(|| password::verify(black_box(&pw), black_box(&stored)))
    });
    g.finish();
    c.bench_function("operator password rules (common list)", |b| {
        b.iter(|| password::check(black_box(&pw), "dana@example.com"))
    });
    let secret = TotpSecret::generate().unwrap();
    let code = secret.code_at(1_700_000_000_000).unwrap();
    c.bench_function("operator TOTP check (three steps)", |b| {
        b.iter(|| secret.matching_step(black_box(&code), 1_700_000_000_000))
    });
}

criterion_group!(benches, crypto, merkle, access, operator);
criterion_main!(benches);
