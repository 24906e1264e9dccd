//! API keys: `atsk_<key_id>_<secret>`.
//!
//! The key id is public (it names the key in lists, logs and revocations); the secret is 32
//! bytes from the operating system's CSPRNG, shown once and recorded only as its SHA-256 in an
//! `ats.apikey.issued` event. A plain hash is enough — a password hash (argon2, bcrypt) slows
//! guessing of *low-entropy* secrets, and 256 random bits cannot be guessed.

use ats_events::{
    ApiKeyIssued, ApiKeyRevoked, Envelope, FieldError, Payload, Scope, Timestamp, Validate,
};
use sha2::{Digest, Sha256};

/// Prefix of every key, so a leaked key is recognisable by secret scanners.
pub const PREFIX: &str = "atsk_";

/// A freshly made key: the token to hand out and the event payload to append.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// The full key, `atsk_<key_id>_<secret>`; never stored.
    pub token: String,
    /// What the log records.
    pub issued: ApiKeyIssued,
}

/// Makes a key with `scopes` (duplicates dropped, fixed order), validated like any event.
pub fn generate(
    name: &str,
    scopes: &[Scope],
    rate_limit_per_minute: Option<u32>,
) -> Result<NewKey, FieldError> {
    let mut id = [0u8; 8];
    let mut secret = [0u8; 32];
    getrandom::fill(&mut id)
        .and_then(|()| getrandom::fill(&mut secret))
        .map_err(|e| FieldError::new("", format!("no randomness from the system: {e}")))?;
    let key_id = hex(&id);
    let secret = hex(&secret);
    let mut scopes = scopes.to_vec();
    scopes.sort();
    scopes.dedup();
    let issued = ApiKeyIssued {
        key_id: key_id.clone(),
        name: name.to_owned(),
        scopes,
        secret_sha256: secret_sha256(&secret),
        rate_limit_per_minute,
    };
    issued.validate()?;
    Ok(NewKey {
        token: format!("{PREFIX}{key_id}_{secret}"),
        issued,
    })
}

impl NewKey {
    /// The `ats.apikey.issued` event to append.
    pub fn event(&self, now: Timestamp, source: &str) -> Envelope {
        Envelope::new(
            uuid::Uuid::now_v7(),
            now,
            source,
            Payload::ApiKeyIssued(self.issued.clone()),
        )
    }
}

/// The `ats.apikey.revoked` event of `key_id`.
pub fn revocation(
    key_id: &str,
    reason: Option<String>,
    now: Timestamp,
    source: &str,
) -> Result<Envelope, FieldError> {
    let revoked = ApiKeyRevoked {
        key_id: key_id.to_owned(),
        reason,
    };
    revoked.validate()?;
    Ok(Envelope::new(
        uuid::Uuid::now_v7(),
        now,
        source,
        Payload::ApiKeyRevoked(revoked),
    ))
}

/// Parses scope names (`read`, `ingest`, `admin`); the error names the index.
pub fn parse_scopes<S: AsRef<str>>(names: &[S]) -> Result<Vec<Scope>, FieldError> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            Scope::parse(name.as_ref().trim()).ok_or_else(|| {
                FieldError::new(
                    format!("scopes[{i}]"),
                    format!(
                        "unknown scope {:?}, expected ingest, read or admin",
                        name.as_ref()
                    ),
                )
            })
        })
        .collect()
}

/// A presented key split into its id and secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presented<'a> {
    /// The key id.
    pub key_id: &'a str,
    /// The secret part.
    pub secret: &'a str,
}

/// Splits `atsk_<key_id>_<secret>`; `None` for anything else.
pub fn parse(token: &str) -> Option<Presented<'_>> {
    let rest = token.strip_prefix(PREFIX)?;
    let (key_id, secret) = rest.split_once('_')?;
    (!key_id.is_empty() && !secret.is_empty()).then_some(Presented { key_id, secret })
}

/// Lowercase hex SHA-256 of a secret (what `ats.apikey.issued` records).
pub fn secret_sha256(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// Whether `secret` hashes to `expected_hex`.
pub fn matches(secret: &str, expected_hex: &str) -> bool {
    same_hash(&secret_sha256(secret), expected_hex)
}

/// Whether two hex hashes are equal, comparing every byte whatever the first difference (no
/// timing hint of how much of a hash matched).
pub fn same_hash(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_parses_and_matches_only_its_own_hash() {
        let key = generate("grafana", &[Scope::Read, Scope::Read], Some(60)).unwrap();
        assert_eq!(key.issued.scopes, vec![Scope::Read]);
        let presented = parse(&key.token).unwrap();
        assert_eq!(presented.key_id, key.issued.key_id);
        assert!(matches(presented.secret, &key.issued.secret_sha256));
        let other = generate("other", &[Scope::Read], None).unwrap();
        assert!(!matches(presented.secret, &other.issued.secret_sha256));
        assert_ne!(key.token, other.token);
        assert!(!key.token.contains(&key.issued.secret_sha256));
    }

    #[test]
    fn scope_names_are_checked_by_index() {
        assert_eq!(
            parse_scopes(&["read", " admin"]).unwrap(),
            vec![Scope::Read, Scope::Admin]
        );
        assert_eq!(
            parse_scopes(&["read", "write"]).unwrap_err().field,
            "scopes[1]"
        );
    }

    #[test]
    fn foreign_tokens_do_not_parse() {
        for token in [
            "",
            "atsk_",
            "atsk__x",
            "atsk_id_",
            "Bearer x",
            "sk_live_abc_def",
        ] {
            assert_eq!(parse(token), None, "{token:?}");
        }
    }

    #[test]
    fn invalid_keys_are_refused_with_the_field() {
        let err = generate("", &[Scope::Read], None).unwrap_err();
        assert_eq!(err.field, "name");
        let err = generate("x", &[], None).unwrap_err();
        assert_eq!(err.field, "scopes");
        let err = generate("x", &[Scope::Admin], Some(0)).unwrap_err();
        assert_eq!(err.field, "rate_limit_per_minute");
    }
}
