//! The dashboard page, served by the binary itself.

use axum::response::Html;
use axum::routing::get;
use axum::Router;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/", get(page))
}

async fn page() -> Html<&'static str> {
    Html(include_str!("../dashboard.html"))
}
