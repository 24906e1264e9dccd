//! Query parameters shared by read endpoints, parsed into our error format.

use std::time::Duration;

use ats_events::Timestamp;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::ApiError;
use crate::state::AppState;

/// `Query<T>` whose rejection is our JSON error naming the parameter.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Params(value)),
            Err(rejection) => Err(ApiError::BadRequest {
                code: "invalid_parameter",
                message: rejection.body_text(),
            }),
        }
    }
}

/// `as_of` and `min_position`, accepted by every read endpoint.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct ReadParams {
    /// Evaluate time windows as of this instant (RFC 3339; default now).
    pub as_of: Option<String>,
    /// Wait (up to 5 s) until the projectors have applied this log position.
    pub min_position: Option<u64>,
}

/// How long read-your-writes waits.
pub const MIN_POSITION_WAIT: Duration = Duration::from_secs(5);

impl ReadParams {
    /// The `as_of` instant (now when absent).
    pub fn as_of(&self) -> Result<Timestamp, ApiError> {
        match &self.as_of {
            None => Ok(Timestamp::now()),
            Some(text) => Timestamp::parse_rfc3339(text).map_err(|e| ApiError::BadRequest {
                code: "invalid_parameter",
                message: format!("as_of: invalid RFC 3339 date-time {text:?}: {e}"),
            }),
        }
    }

    /// Waits for `min_position`, if given.
    pub async fn settle(&self, state: &AppState) -> Result<(), ApiError> {
        if let Some(position) = self.min_position {
            if !state.runtime.wait_for(position, MIN_POSITION_WAIT).await {
                return Err(ApiError::Timeout(format!(
                    "min_position: the read models have not reached position {position} within {} s",
                    MIN_POSITION_WAIT.as_secs()
                )));
            }
        }
        Ok(())
    }
}
