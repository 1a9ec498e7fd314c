//! `/api/public/*`: Kasm's Developer API (see ../shared/reference/kasm-developer-api.md).

use axum::Router;

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
}
