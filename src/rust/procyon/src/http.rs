//! Outbound HTTP from procedures, as SpacetimeDB's `spacetimedb::http`: `ctx.http.get(uri)` for a
//! plain `GET`, `ctx.http.send(request)` for any method, headers and body. The host sends the
//! request while the call is suspended (like `sleep_until`, no host thread waits), and refuses it
//! inside `with_tx`, where it would hold the transaction open. Reducers have no `http` at all.
//!
//! ```no_run
//! # use procyon::{procedure, ProcedureContext};
//! #[procedure]
//! fn fetch(ctx: &mut ProcedureContext, url: String) -> String {
//!     match ctx.http.get(url) {
//!         Ok(response) => response.into_body().into_string_lossy(),
//!         Err(error) => format!("no response: {error}"),
//!     }
//! }
//! ```

use crate::rt::{self, sys, HTTP_INVALID_REQUEST, HTTP_NETWORK, HTTP_REFUSED, HTTP_TIMEOUT, HTTP_TOO_LARGE};
use crate::sats::{DecodeError, ProcyonType};
use crate::TimeDuration;
use bytes::Bytes;
use std::fmt;

/// A request to send: build it with `Request::builder()` (the `http` crate's type).
pub type Request<T = Body> = http::Request<T>;

/// What the server answered, whatever its status: check `response.status()`.
pub type Response<T = Body> = http::Response<T>;

/// Sends HTTP requests from a procedure: the `http` field of its `ProcedureContext`.
#[non_exhaustive]
pub struct HttpClient {}

impl HttpClient {
    /// Sends `request` and waits for the whole response. Put a [`Timeout`] in the request's
    /// extensions (`Request::builder().extension(Timeout::from(..))`) to wait less or more than
    /// the server's default (30 s); the server clamps it to its maximum. Other extensions are
    /// ignored. `Err` means no response came (refused, timed out, too large, network failure);
    /// an HTTP error status is an `Ok` response.
    ///
    /// ```no_run
    /// # use procyon::http::{Request, Timeout};
    /// # use procyon::{procedure, ProcedureContext, TimeDuration};
    /// # use std::time::Duration;
    /// #[procedure]
    /// fn notify(ctx: &mut ProcedureContext, text: String) -> u16 {
    ///     let request = Request::builder()
    ///         .method("POST")
    ///         .uri("https://hooks.example.com/notify")
    ///         .header("Content-Type", "text/plain")
    ///         .extension(Timeout::from(TimeDuration::from(Duration::from_secs(5))))
    ///         .body(text)
    ///         .expect("a valid request");
    ///     ctx.http.send(request).map(|response| response.status().as_u16()).unwrap_or(0)
    /// }
    /// ```
    pub fn send<B: Into<Body>>(&self, request: Request<B>) -> Result<Response, Error> {
        let (parts, body) = request.into_parts();
        let body = body.into().into_bytes();
        let mut wire = Vec::new();
        parts.method.as_str().to_owned().encode(&mut wire);
        parts.uri.to_string().encode(&mut wire);
        crate::sats::encode_len(parts.headers.len(), &mut wire);
        for (name, value) in &parts.headers {
            name.as_str().to_owned().encode(&mut wire);
            value.as_bytes().to_vec().encode(&mut wire);
        }
        parts.extensions.get::<Timeout>().map(|timeout| timeout.0.to_micros()).encode(&mut wire);
        let result = unsafe { sys::http_request(wire.as_ptr(), wire.len(), body.as_ptr(), body.len()) };
        if result < 0 {
            let message = String::from_utf8_lossy(&rt::read_buffer(unsafe { sys::buffer_len() } as i64)).into_owned();
            return Err(Error { kind: ErrorKind::from_code(result), message });
        }
        decode_response(rt::read_buffer(result)).map_err(|e| Error {
            kind: ErrorKind::Network,
            message: format!("the host sent a response this module cannot read: {}", e),
        })
    }

    /// Sends a `GET` request without headers to `uri` and waits for the whole response.
    pub fn get<U>(&self, uri: U) -> Result<Response, Error>
    where
        http::Uri: TryFrom<U>,
        <http::Uri as TryFrom<U>>::Error: Into<http::Error>,
    {
        self.send(http::Request::builder().method(http::Method::GET).uri(uri).body(Body::empty())?)
    }
}

/// The reply of `http_request`: the status, the headers, then the body (the rest).
fn decode_response(reply: Vec<u8>) -> Result<Response, DecodeError> {
    let mut input = &reply[..];
    let status = u16::decode(&mut input)?;
    let mut response = http::Response::new(Body::empty());
    *response.status_mut() = http::StatusCode::from_u16(status).map_err(|_| DecodeError(format!("status {} is not an HTTP status", status)))?;
    for _ in 0..u32::decode(&mut input)? {
        let (name, value) = (String::decode(&mut input)?, Vec::<u8>::decode(&mut input)?);
        // The host sends only headers the `http` crate takes; a name or value it would not is dropped.
        if let (Ok(name), Ok(value)) = (http::header::HeaderName::from_bytes(name.as_bytes()), http::HeaderValue::from_bytes(&value)) {
            response.headers_mut().append(name, value);
        }
    }
    let body_start = reply.len() - input.len();
    *response.body_mut() = Body::from_bytes(Bytes::from(reply).slice(body_start..));
    Ok(response)
}

/// The body of a request or a response: bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Body {
    bytes: Bytes,
}

impl Body {
    /// The body's bytes.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// The body as text; an error if it is not UTF-8.
    pub fn into_string(self) -> Result<String, std::string::FromUtf8Error> {
        String::from_utf8(self.bytes.to_vec())
    }

    /// The body as text, with `U+FFFD` in place of bytes that are not UTF-8.
    pub fn into_string_lossy(self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    pub fn from_bytes(bytes: impl Into<Bytes>) -> Body {
        Body { bytes: bytes.into() }
    }

    /// No bytes, as a `GET` request has.
    pub fn empty() -> Body {
        Body::default()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

macro_rules! body_from {
    ($($t:ty),*) => {
        $(impl From<$t> for Body {
            fn from(bytes: $t) -> Body {
                Body::from_bytes(bytes)
            }
        })*
    };
}

body_from!(String, Vec<u8>, Box<[u8]>, &'static [u8], &'static str, Bytes);

impl From<()> for Body {
    fn from(_: ()) -> Body {
        Body::empty()
    }
}

/// How long a request may take, from connecting to the last byte of the response (a request
/// extension). Without it the server's default applies (30 s); the server's maximum (180 s
/// unless configured otherwise) caps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeout(pub TimeDuration);

impl From<TimeDuration> for Timeout {
    fn from(timeout: TimeDuration) -> Timeout {
        Timeout(timeout)
    }
}

impl From<Timeout> for TimeDuration {
    fn from(Timeout(timeout): Timeout) -> TimeDuration {
        timeout
    }
}

/// Why a request got no response. `Display` is the host's message, which names the cause and
/// the setting involved.
#[derive(Clone, Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

/// What kind of failure an [`Error`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request is malformed: a bad URI, a scheme other than http or https, a bad header.
    InvalidRequest,
    /// The server's policy forbids the destination: a private, loopback or link-local address,
    /// or a host the module's `allowed_http_hosts!` does not list.
    Refused,
    /// No whole response came within the request's timeout.
    Timeout,
    /// The request's body or the response is larger than the server allows.
    TooLarge,
    /// The connection failed: the name did not resolve, the peer refused or reset it.
    Network,
}

impl ErrorKind {
    fn from_code(code: i64) -> ErrorKind {
        match code {
            HTTP_INVALID_REQUEST => ErrorKind::InvalidRequest,
            HTTP_REFUSED => ErrorKind::Refused,
            HTTP_TIMEOUT => ErrorKind::Timeout,
            HTTP_TOO_LARGE => ErrorKind::TooLarge,
            HTTP_NETWORK => ErrorKind::Network,
            _ => panic!("the host answered an HTTP request with unknown code {}", code),
        }
    }
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<http::Error> for Error {
    fn from(error: http::Error) -> Self {
        Error { kind: ErrorKind::InvalidRequest, message: error.to_string() }
    }
}

/// Limits the hosts this module's procedures may send requests to, checked by the server on
/// every request and redirect (on top of its own rules): `allowed_http_hosts!("api.example.com",
/// "*.example.org")`. An entry is a host name, `*.` and a domain (its subdomains), or an IP
/// address. Without it, any host the server allows may be reached. Declare it once per module.
#[macro_export]
macro_rules! allowed_http_hosts {
    ($($host:literal),+ $(,)?) => {
        #[export_name = "__procyon_preinit__01_http_hosts"]
        extern "C" fn __procyon_allowed_http_hosts() {
            $crate::rt::register_http_hosts(&[$($host),+]);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, headers: &[(&str, &[u8])], body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        status.encode(&mut out);
        crate::sats::encode_len(headers.len(), &mut out);
        for (name, value) in headers {
            (*name).to_owned().encode(&mut out);
            value.to_vec().encode(&mut out);
        }
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn a_reply_decodes_to_its_status_headers_and_body() {
        let response = decode_response(reply(404, &[("x-a", b"1"), ("x-a", b"2"), ("bad name", b"x"), ("x-b", b"line\nbreak")], b"not \xff here")).unwrap();

        assert_eq!(response.status(), http::StatusCode::NOT_FOUND);
        let values: Vec<_> = response.headers().get_all("x-a").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
        assert_eq!(values, ["1", "2"]);
        assert_eq!(response.headers().len(), 2, "headers the http crate refuses are dropped");
        assert_eq!(response.into_body().into_string_lossy(), "not \u{fffd} here");
    }

    #[test]
    fn a_reply_that_is_not_one_is_an_error() {
        assert!(decode_response(reply(42, &[], b"")).is_err());
        assert!(decode_response(vec![200]).is_err());
    }

    #[test]
    fn a_request_the_http_crate_refuses_is_an_invalid_request() {
        let error: Error = http::Request::builder().header("x", "a\u{1}b").body(()).unwrap_err().into();
        assert_eq!(error.kind(), ErrorKind::InvalidRequest);
        assert_eq!(Body::from("héllo").into_string().unwrap(), "héllo");
        assert!(Body::from(()).is_empty());
    }
}
