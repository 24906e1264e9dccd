//! Who may call what (issue 9): API keys with scopes, checked per route, rate-limited per key.
//!
//! Two tower layers built with `axum::middleware`:
//! - [`authenticate`] (on the whole router) reads `Authorization: Bearer <key>` (or
//!   `X-API-Key`), identifies the key and spends one request of its rate limit. A request
//!   without a key goes on unidentified; one with a bad key is refused with 401 here.
//! - [`require`] (on each route, added by [`crate::routes::Routes`]) answers 401 to an
//!   unidentified request and 403 to a key without the route's scope.
//!
//! Keys come from two places: the `keys_v1` read model (keys issued through the admin API or
//! `ats-mafia keys create`, stored as events, so every node knows them) and the keys held in
//! memory for the life of the process (`ATS_ROOT_KEY`, the `serve --demo` key), which have
//! every scope and no rate limit. A stored key that is not found yet may have been issued a
//! moment ago (on this node or another): the check waits, bounded, for the keys projector to
//! reach the log's head before refusing it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ats_commands::keys;
use ats_events::Scope;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: probes, the API documents, the dashboard page (whose data calls need a key).
    Public,
    /// A key with this scope.
    Scope(Scope),
}

impl Access {
    /// `read`.
    pub const READ: Access = Access::Scope(Scope::Read);
    /// `ingest`.
    pub const INGEST: Access = Access::Scope(Scope::Ingest);
    /// `admin`.
    pub const ADMIN: Access = Access::Scope(Scope::Admin);
}

/// The identified caller, put in the request's extensions by [`authenticate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Key id of a stored key, or the name of a key held in memory (`root`, `demo`).
    pub key: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// Requests per minute; `None` is unlimited.
    pub rate_limit_per_minute: Option<u32>,
}

/// A key held in memory for the life of the process, with every scope and no rate limit.
#[derive(Clone)]
pub struct MemoryKey {
    /// Name in messages and logs (`root`, `demo`).
    pub name: String,
    /// SHA-256 of the whole key, hex.
    secret_sha256: String,
}

impl MemoryKey {
    /// A key named `name` whose secret is `secret` (hashed at once; the text is not kept).
    pub fn new(name: &str, secret: &str) -> Self {
        Self {
            name: name.to_owned(),
            secret_sha256: keys::secret_sha256(secret),
        }
    }
}

impl std::fmt::Debug for MemoryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryKey")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The authentication settings and the per-key rate-limit buckets.
#[derive(Debug)]
pub struct Auth {
    /// `false` only with `serve --insecure-no-auth`: every request may do everything.
    pub enabled: bool,
    /// Keys held in memory.
    pub memory_keys: Vec<MemoryKey>,
    /// Rate limit of stored keys issued without one (`api.auth.rate_limit_per_minute`).
    pub default_rate_limit_per_minute: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// Longest a request with an unknown key waits for the keys projector to catch up.
const CATCH_UP_WAIT: Duration = Duration::from_secs(2);

impl Auth {
    /// Authentication on, with these keys held in memory.
    pub fn new(memory_keys: Vec<MemoryKey>, default_rate_limit_per_minute: u32) -> Self {
        Self {
            enabled: true,
            memory_keys,
            default_rate_limit_per_minute: default_rate_limit_per_minute.max(1),
            buckets: Mutex::default(),
        }
    }

    /// No authentication at all (`--insecure-no-auth`).
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            ..Self::new(Vec::new(), DEFAULT_RATE_LIMIT_PER_MINUTE)
        }
    }

    /// Spends one request of `principal`'s limit; the seconds to wait when none is left.
    fn spend(&self, principal: &Principal, now: Instant) -> Result<(), u64> {
        let Some(limit) = principal.rate_limit_per_minute else {
            return Ok(());
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        buckets
            .entry(principal.key.clone())
            .or_insert_with(|| Bucket::full(limit, now))
            .take(limit, now)
    }
}

/// `api.auth.rate_limit_per_minute` when not configured: 100 requests a second.
pub const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 6_000;

/// A token bucket: holds up to `limit` requests, refilled at `limit` per minute. (A few lines
/// of arithmetic; a rate-limiting crate would bring its own clock and map for the same.)
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn full(limit: u32, now: Instant) -> Self {
        Self {
            tokens: f64::from(limit),
            updated: now,
        }
    }

    fn take(&mut self, limit: u32, now: Instant) -> Result<(), u64> {
        let per_second = f64::from(limit) / 60.0;
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_second).min(f64::from(limit));
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - self.tokens) / per_second).ceil().max(1.0) as u64)
        }
    }
}

/// The key a request presents: `None` without one, an error when the header is malformed.
fn presented(headers: &HeaderMap) -> Option<Result<&str, ApiError>> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let bearer = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|v| !v.is_empty());
        return Some(bearer.ok_or_else(|| {
            ApiError::Unauthorized("Authorization: expected `Bearer <API key>`".into())
        }));
    }
    headers.get("x-api-key").map(|value| {
        value
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ApiError::Unauthorized("X-API-Key: expected an API key".into()))
    })
}

/// Identifies `token`, or says why it cannot be.
async fn identify(state: &AppState, token: &str) -> Result<Principal, ApiError> {
    let auth = &state.auth;
    // One hash of the whole token, compared with every key held in memory.
    let token_sha256 = (!auth.memory_keys.is_empty()).then(|| keys::secret_sha256(token));
    if let Some(memory) = token_sha256.as_deref().and_then(|hash| {
        auth.memory_keys
            .iter()
            .find(|k| keys::same_hash(hash, &k.secret_sha256))
    }) {
        return Ok(Principal {
            key: memory.name.clone(),
            scopes: Scope::ALL.to_vec(),
            rate_limit_per_minute: None,
        });
    }
    let Some(key) = keys::parse(token) else {
        return Err(ApiError::Unauthorized(format!(
            "not an API key (keys look like {}<id>_<secret>)",
            keys::PREFIX
        )));
    };
    let handle = state
        .runtime
        .handle(ats_projections::keys::NAME)
        .ok_or_else(|| ApiError::Internal("keys projector missing".into()))?;
    let mut stored = ats_projections::keys::get(&handle.tree(), key.key_id);
    if stored.is_none() {
        // Issued a moment ago? Wait for the keys projector to reach the head, then look again.
        let head = state.log.head().await.map_err(|e| {
            ApiError::Unavailable(format!("cannot check API key {}: {e}", key.key_id))
        })?;
        if handle.wait_for(head, CATCH_UP_WAIT).await {
            stored = ats_projections::keys::get(&handle.tree(), key.key_id);
        }
    }
    let Some(stored) = stored else {
        return Err(ApiError::Unauthorized(format!(
            "API key {}: unknown",
            key.key_id
        )));
    };
    if let Some(at) = stored.revoked_at {
        return Err(ApiError::Unauthorized(format!(
            "API key {}: revoked at {}",
            key.key_id,
            at.to_rfc3339()
        )));
    }
    if !keys::matches(key.secret, &stored.secret_sha256) {
        return Err(ApiError::Unauthorized(format!(
            "API key {}: wrong secret",
            key.key_id
        )));
    }
    Ok(Principal {
        key: key.key_id.to_owned(),
        scopes: stored.scopes,
        rate_limit_per_minute: Some(
            stored
                .rate_limit_per_minute
                .unwrap_or(auth.default_rate_limit_per_minute),
        ),
    })
}

/// Identifies the caller and spends one request of its rate limit (see the module docs).
pub(crate) async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    if !state.auth.enabled {
        request.extensions_mut().insert(Principal {
            key: "insecure-no-auth".into(),
            scopes: Scope::ALL.to_vec(),
            rate_limit_per_minute: None,
        });
        return next.run(request).await;
    }
    let principal = match presented(request.headers()) {
        None => return next.run(request).await,
        Some(Err(err)) => return err.into_response(),
        Some(Ok(token)) => match identify(&state, token).await {
            Ok(principal) => principal,
            Err(err) => return err.into_response(),
        },
    };
    if let Err(retry_after_s) = state.auth.spend(&principal, Instant::now()) {
        return ApiError::RateLimited {
            message: format!(
                "API key {}: rate limit of {} requests per minute reached; retry in {retry_after_s} s",
                principal.key,
                principal.rate_limit_per_minute.unwrap_or_default()
            ),
            retry_after_s,
        }
        .into_response();
    }
    request.extensions_mut().insert(principal);
    next.run(request).await
}

/// Lets the request through only with a key holding `scope`.
pub(crate) async fn require(State(scope): State<Scope>, request: Request, next: Next) -> Response {
    match request.extensions().get::<Principal>() {
        None => ApiError::Unauthorized(format!(
            "this endpoint needs an API key with the `{}` scope: send `Authorization: Bearer <key>`",
            scope.as_str()
        ))
        .into_response(),
        Some(principal) if !principal.scopes.contains(&scope) => {
            let has: Vec<&str> = principal.scopes.iter().map(|s| s.as_str()).collect();
            ApiError::Forbidden(format!(
                "API key {} lacks the `{}` scope this endpoint needs (it has: {})",
                principal.key,
                scope.as_str(),
                has.join(", ")
            ))
            .into_response()
        }
        Some(_) => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(limit: u32) -> Principal {
        Principal {
            key: "k".into(),
            scopes: vec![Scope::Read],
            rate_limit_per_minute: Some(limit),
        }
    }

    #[test]
    fn a_bucket_allows_its_limit_at_once_then_refills_at_the_limit_per_minute() {
        let auth = Auth::new(Vec::new(), 60);
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(auth.spend(&principal(3), start), Ok(()));
        }
        // Three per minute: the next one in 20 s.
        assert_eq!(auth.spend(&principal(3), start), Err(20));
        assert_eq!(
            auth.spend(&principal(3), start + Duration::from_secs(20)),
            Ok(())
        );
        assert!(auth
            .spend(&principal(3), start + Duration::from_secs(21))
            .is_err());
        // Unlimited keys never wait.
        let unlimited = Principal {
            rate_limit_per_minute: None,
            ..principal(1)
        };
        for _ in 0..1000 {
            assert_eq!(auth.spend(&unlimited, start), Ok(()));
        }
    }

    #[test]
    fn the_presented_key_comes_from_bearer_or_x_api_key() {
        let mut headers = HeaderMap::new();
        assert!(presented(&headers).is_none());
        headers.insert("x-api-key", "atsk_a_b".parse().unwrap());
        assert_eq!(presented(&headers).unwrap().unwrap(), "atsk_a_b");
        headers.insert(header::AUTHORIZATION, "Bearer atsk_c_d".parse().unwrap());
        assert_eq!(presented(&headers).unwrap().unwrap(), "atsk_c_d");
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert!(presented(&headers).unwrap().is_err());
    }
}
