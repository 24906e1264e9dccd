//! One module per HTTP resource, each declaring its routes with the access they need.

pub mod admin;
pub mod aggregator;
pub mod costs;
pub mod dashboard;
pub mod events;
pub mod health;
pub mod keys;
pub mod operators;
pub mod progress;
pub mod reports;
pub mod training;

use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{on, MethodFilter};
use axum::Router;

use crate::auth::{require, Access};
use crate::state::AppState;

/// One route and what it needs (see [`crate::route_table`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// HTTP method.
    pub method: Method,
    /// Path pattern, e.g. `/api/analytics/operator/{id}/performance`.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
}

/// A router that records each route with its [`Access`]. Route modules can only add routes
/// through it, so no route exists without a declared access, and the table the tests
/// enumerate is the one the router was built from.
pub struct Routes {
    router: Router<AppState>,
    table: Vec<RouteSpec>,
}

impl Routes {
    /// No routes.
    pub fn new() -> Self {
        Self {
            router: Router::new(),
            table: Vec::new(),
        }
    }

    fn add<H, T>(mut self, method: Method, path: &'static str, access: Access, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone())
            .unwrap_or_else(|_| panic!("{method} {path}: no method filter for {method}"));
        let endpoint = on(filter, handler);
        let endpoint = match access {
            Access::Public => endpoint,
            Access::Scope(scope) => {
                endpoint.route_layer(axum::middleware::from_fn_with_state(scope, require))
            }
        };
        self.router = self.router.route(path, endpoint);
        self.table.push(RouteSpec {
            method,
            path,
            access,
        });
        self
    }

    /// `GET path`.
    pub fn get<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        access: Access,
        handler: H,
    ) -> Self {
        self.add(Method::GET, path, access, handler)
    }

    /// `POST path`.
    pub fn post<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        access: Access,
        handler: H,
    ) -> Self {
        self.add(Method::POST, path, access, handler)
    }

    /// `DELETE path`.
    pub fn delete<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        access: Access,
        handler: H,
    ) -> Self {
        self.add(Method::DELETE, path, access, handler)
    }

    /// Both sets of routes.
    pub fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.table.extend(other.table);
        self
    }

    /// The router and its table.
    pub fn into_parts(self) -> (Router<AppState>, Vec<RouteSpec>) {
        (self.router, self.table)
    }
}

impl Default for Routes {
    fn default() -> Self {
        Self::new()
    }
}

/// Every route of the API.
pub fn all() -> Routes {
    Routes::new()
        .merge(events::routes())
        .merge(operators::routes())
        .merge(costs::routes())
        .merge(progress::routes())
        .merge(training::routes())
        .merge(aggregator::routes())
        .merge(reports::routes())
        .merge(admin::routes())
        .merge(keys::routes())
        .merge(health::routes())
        .merge(dashboard::routes())
        .merge(crate::openapi::routes())
}
