//! API keys (`keys_v1`, issue 9): `ats.apikey.issued` and `ats.apikey.revoked` folded into one
//! record per key, `k/<key_id>`.
//!
//! Keys are events so that every node of a JetStream deployment knows the same keys, and the
//! log is the audit trail of who could do what, when. Only the SHA-256 of a secret is folded.
//! The first issuance of a key id stands (a later one with the same id is ignored, so nothing
//! can rewrite a key's hash or scopes); a revocation is final, and revoking an unknown or
//! revoked key changes nothing.

use ats_events::{Envelope, Payload, Scope, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::profiles::decode;
use crate::runtime::{ApplyError, Projector};
use crate::view::View;

/// The projector's name (with its version).
pub const NAME: &str = "keys_v1";

/// A key as folded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredKey {
    /// Name for people.
    pub name: String,
    /// What the key may do.
    pub scopes: Vec<Scope>,
    /// Lowercase hex SHA-256 of the secret.
    pub secret_sha256: String,
    /// Requests per minute; `None` is the server's default.
    pub rate_limit_per_minute: Option<u32>,
    /// `occurred_at` of the issuing event.
    pub issued_at: Timestamp,
    /// `occurred_at` of the revocation, once revoked.
    pub revoked_at: Option<Timestamp>,
    /// Why it was revoked.
    pub revoked_reason: Option<String>,
}

/// A key as listed: everything but its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct KeyInfo {
    /// Public key id.
    pub key_id: String,
    /// Name.
    pub name: String,
    /// Scopes.
    pub scopes: Vec<Scope>,
    /// Requests per minute (`null`: the server's default).
    pub rate_limit_per_minute: Option<u32>,
    /// RFC 3339.
    pub issued_at: String,
    /// RFC 3339, once revoked.
    pub revoked_at: Option<String>,
    /// Why it was revoked.
    pub revoked_reason: Option<String>,
}

fn key(key_id: &str) -> Vec<u8> {
    [b"k/", key_id.as_bytes()].concat()
}

/// Folds key issuance and revocation.
pub struct KeysProjector;

impl Projector for KeysProjector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply(&self, view: &mut View<'_>, event: &Envelope) -> Result<(), ApplyError> {
        match &event.payload {
            Payload::ApiKeyIssued(p) => {
                let k = key(&p.key_id);
                if view.get::<StoredKey>(&k)?.is_none() {
                    view.put(
                        &k,
                        StoredKey {
                            name: p.name.clone(),
                            scopes: p.scopes.clone(),
                            secret_sha256: p.secret_sha256.clone(),
                            rate_limit_per_minute: p.rate_limit_per_minute,
                            issued_at: event.occurred_at,
                            revoked_at: None,
                            revoked_reason: None,
                        },
                    )?;
                }
            }
            Payload::ApiKeyRevoked(p) => {
                if let Some(stored) = view.get_mut::<StoredKey>(&key(&p.key_id))? {
                    if stored.revoked_at.is_none() {
                        stored.revoked_at = Some(event.occurred_at);
                        stored.revoked_reason = p.reason.clone();
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The key `key_id`, revoked or not.
pub fn get(tree: &sled::Tree, key_id: &str) -> Option<StoredKey> {
    tree.get(key(key_id))
        .ok()
        .flatten()
        .and_then(|v| decode(&v))
}

fn key_info(key_id: String, stored: StoredKey) -> KeyInfo {
    KeyInfo {
        key_id,
        name: stored.name,
        scopes: stored.scopes,
        rate_limit_per_minute: stored.rate_limit_per_minute,
        issued_at: stored.issued_at.to_rfc3339(),
        revoked_at: stored.revoked_at.map(|t| t.to_rfc3339()),
        revoked_reason: stored.revoked_reason,
    }
}

/// The key `key_id` as listed.
pub fn info(tree: &sled::Tree, key_id: &str) -> Option<KeyInfo> {
    get(tree, key_id).map(|stored| key_info(key_id.to_owned(), stored))
}

/// Every key, by key id.
pub fn list(tree: &sled::Tree) -> Vec<KeyInfo> {
    tree.scan_prefix(b"k/")
        .map_while(Result::ok)
        .filter_map(|(k, v)| {
            let id = String::from_utf8_lossy(k.get(2..)?).into_owned();
            Some(key_info(id, decode(&v)?))
        })
        .collect()
}

/// Whether any key is in force (a server without one and without a root key refuses all).
pub fn any_active(tree: &sled::Tree) -> bool {
    tree.scan_prefix(b"k/")
        .map_while(Result::ok)
        .filter_map(|(_, v)| decode::<StoredKey>(&v))
        .any(|k| k.revoked_at.is_none())
}

#[cfg(test)]
mod tests {
    use ats_events::cloudevents::event_id;
    use ats_events::{ApiKeyIssued, ApiKeyRevoked};

    use super::*;
    use crate::activity::tests::fold_with as fold_in_memory;

    const HASH_A: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    const HASH_B: &str = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";

    fn at(n: i64) -> Timestamp {
        Timestamp::from_micros(1_790_000_000_000_000 + n * 1_000_000)
    }

    fn issued(n: i64, key_id: &str, hash: &str, scopes: Vec<Scope>) -> Envelope {
        Envelope::new(
            event_id(&format!("issued-{n}")),
            at(n),
            "test",
            Payload::ApiKeyIssued(ApiKeyIssued {
                key_id: key_id.into(),
                name: format!("key {n}"),
                scopes,
                secret_sha256: hash.into(),
                rate_limit_per_minute: None,
            }),
        )
    }

    fn revoked(n: i64, key_id: &str) -> Envelope {
        Envelope::new(
            event_id(&format!("revoked-{n}")),
            at(n),
            "test",
            Payload::ApiKeyRevoked(ApiKeyRevoked {
                key_id: key_id.into(),
                reason: Some(format!("reason {n}")),
            }),
        )
    }

    #[test]
    fn the_first_issuance_stands_and_a_revocation_is_final() {
        let tree = fold_in_memory(
            &KeysProjector,
            &[
                issued(1, "a", HASH_A, vec![Scope::Read]),
                // A second issuance of the same id cannot swap the hash or widen the scopes.
                issued(2, "a", HASH_B, vec![Scope::Admin]),
                issued(3, "b", HASH_B, vec![Scope::Ingest]),
                revoked(4, "b"),
                revoked(5, "b"),
                revoked(6, "unknown"),
            ],
        );
        let a = get(&tree, "a").unwrap();
        assert_eq!(
            (a.scopes, a.secret_sha256.as_str()),
            (vec![Scope::Read], HASH_A)
        );
        assert_eq!(a.revoked_at, None);
        let b = get(&tree, "b").unwrap();
        assert_eq!(b.revoked_at, Some(at(4)));
        assert_eq!(b.revoked_reason.as_deref(), Some("reason 4"));
        assert!(get(&tree, "unknown").is_none());
        let listed = list(&tree);
        assert_eq!(
            listed.iter().map(|k| k.key_id.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(any_active(&tree));
        let all_revoked = fold_in_memory(
            &KeysProjector,
            &[issued(1, "a", HASH_A, vec![Scope::Read]), revoked(2, "a")],
        );
        assert!(!any_active(&all_revoked));
    }
}
