//! Open311 GeoReport v2 at `/open311/v2` (being written).

use crate::AppState;
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new()
}
