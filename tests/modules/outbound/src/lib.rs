//! A module that sends HTTP requests, for OutboundHttpTests: it lists the hosts it may reach,
//! and it tries what a module must not (a request inside with_tx or a reducer).

use procyon::http::{Body, ErrorKind, Request, Timeout};
use procyon::{allowed_http_hosts, procedure, reducer, ProcedureContext, ProcyonType, ReducerContext, TimeDuration};
use std::time::Duration;

allowed_http_hosts!("127.0.0.1", "*.localhost");

/// A response, or why none came (`error_kind` empty on success).
#[derive(ProcyonType)]
pub struct Fetched {
    pub status: u16,
    /// Each response header as `name: value`.
    pub headers: Vec<String>,
    pub body: String,
    pub error_kind: String,
    pub error: String,
}

fn fetched(result: Result<procyon::http::Response, procyon::http::Error>) -> Fetched {
    match result {
        Ok(response) => {
            let (parts, body) = response.into_parts();
            Fetched {
                status: parts.status.as_u16(),
                headers: parts.headers.iter().map(|(name, value)| format!("{}: {}", name, String::from_utf8_lossy(value.as_bytes()))).collect(),
                body: body.into_string_lossy(),
                error_kind: String::new(),
                error: String::new(),
            }
        }
        Err(e) => Fetched {
            status: 0,
            headers: Vec::new(),
            body: String::new(),
            error_kind: match e.kind() {
                ErrorKind::InvalidRequest => "invalid_request",
                ErrorKind::Refused => "refused",
                ErrorKind::Timeout => "timeout",
                ErrorKind::TooLarge => "too_large",
                ErrorKind::Network => "network",
                _ => "other",
            }
            .to_owned(),
            error: e.to_string(),
        },
    }
}

#[procedure]
fn get(ctx: &mut ProcedureContext, url: String) -> Fetched {
    fetched(ctx.http.get(url))
}

/// Any method, headers as `name: value`, a body, and a timeout in milliseconds (0: the server's default).
#[procedure]
fn send(ctx: &mut ProcedureContext, method: String, url: String, headers: Vec<String>, body: Vec<u8>, timeout_ms: u64) -> Fetched {
    let mut request = Request::builder().method(method.as_str()).uri(url);
    for header in &headers {
        let (name, value) = header.split_once(": ").expect("headers are `name: value`");
        request = request.header(name, value);
    }
    if timeout_ms > 0 {
        request = request.extension(Timeout::from(TimeDuration::from(Duration::from_millis(timeout_ms))));
    }
    fetched(request.body(Body::from(body)).map_err(Into::into).and_then(|request| ctx.http.send(request)))
}

/// Sleeps long enough to be saved in Postgres (a durable call), then sends a `GET`.
#[procedure]
fn nap_then_get(ctx: &mut ProcedureContext, url: String) -> Fetched {
    ctx.sleep_until(ctx.timestamp + Duration::from_millis(1500));
    fetched(ctx.http.get(url))
}

#[procedure]
fn add(_ctx: &mut ProcedureContext, a: i32, b: i32) -> i32 {
    a + b
}

// `ctx.http` cannot be reached inside with_tx or a reducer; a module that calls the import
// directly must still be refused.
#[link(wasm_import_module = "procyon")]
extern "C" {
    fn http_request(request: *const u8, request_len: usize, body: *const u8, body_len: usize) -> i64;
}

fn raw_request() -> i64 {
    unsafe { http_request(std::ptr::null(), 0, std::ptr::null(), 0) }
}

/// Bytes that are not a request, as a module that skips the SDK might send.
#[procedure]
fn garbage_request(_ctx: &mut ProcedureContext) -> i64 {
    let garbage = [7u8, 0, 0, 0, b'G'];
    unsafe { http_request(garbage.as_ptr(), garbage.len(), std::ptr::null(), 0) }
}

#[procedure]
fn request_in_tx(ctx: &mut ProcedureContext) -> i64 {
    ctx.with_tx(|_| raw_request())
}

#[reducer]
fn request_in_reducer(_ctx: &ReducerContext) {
    raw_request();
}
