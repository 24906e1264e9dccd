//! The dashboard page, served by the binary itself.

use axum::response::Html;

use crate::auth::Access;
use crate::routes::Routes;

pub fn routes() -> Routes {
    Routes::new().get("/", Access::Public, page)
}

async fn page() -> Html<&'static str> {
    Html(include_str!("../dashboard.html"))
}
