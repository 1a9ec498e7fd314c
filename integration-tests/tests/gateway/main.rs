//! The gateway against the real services: `/api/v1` (cookies, CSRF, tokens, API keys, every
//! route, bad input, rate limits, sessions over HTTP) and schemathesis over its OpenAPI
//! document.

mod api;
mod common;
mod curl;
mod fuzz;
mod ui;
