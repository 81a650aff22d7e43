//! Verification of AWS Signature Version 4 on incoming requests.
//!
//! Both forms are accepted: the `Authorization: AWS4-HMAC-SHA256 ...` header
//! that every SDK sends, and presigned query-string auth (`X-Amz-Algorithm`,
//! `X-Amz-Credential`, ...). Any service name in the credential scope is
//! accepted; the scope's region and service come back in [`Identity`] so the
//! caller can decide.
//!
//! The order of checks and the error texts follow what AWS's JSON-protocol
//! ("Coral") services answer, as recorded by kinesalite and dynalite against
//! the real services: missing auth, then incomplete signature, date format,
//! expiry, `host` being signed, algorithm, credential shape, credential scope,
//! access key, and finally the signature itself. Every error is HTTP 400 with a
//! JSON body `{"__type": error_type(), "message": message()}`, as Kinesis does.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use http::request::Parts;
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const TERMINATOR: &str = "aws4_request";
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// Header-signed requests are valid for 15 minutes either side of the server clock.
const MAX_SKEW_SECS: u64 = 15 * 60;
/// AWS refuses presigned URLs that claim to live longer than a week.
const MAX_PRESIGN_EXPIRES_SECS: u64 = 604_800;

/// Access key id -> secret and account, loaded from the auth file.
#[derive(Clone, Default)]
pub struct KeyStore {
    keys: HashMap<String, Key>,
}

#[derive(Clone)]
struct Key {
    secret: String,
    account_id: Option<String>,
}

// Secrets must never reach logs through `{:?}`.
impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<&String> = self.keys.keys().collect();
        ids.sort();
        f.debug_struct("KeyStore")
            .field("access_key_ids", &ids)
            .finish()
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AuthFile {
    credentials: Vec<CredentialEntry>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CredentialEntry {
    access_key_id: String,
    secret_access_key: String,
    #[serde(default)]
    account_id: Option<String>,
}

/// Why an auth file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    /// The text is not YAML of the expected shape (`credentials:` list of
    /// `accessKeyId` / `secretAccessKey` / optional `accountId`).
    #[error("invalid auth file: {0}")]
    Yaml(#[from] serde_yaml::Error),
    /// An entry has an empty `accessKeyId` or `secretAccessKey`, which could
    /// never sign anything and is almost certainly a templating mistake.
    #[error("credentials[{index}]: {field} must not be empty")]
    EmptyField {
        /// Position of the entry in the `credentials` list.
        index: usize,
        /// The empty field's YAML name.
        field: &'static str,
    },
    /// The same access key id appears twice, so which secret applies would be ambiguous.
    #[error("access key id {0} is listed more than once")]
    DuplicateAccessKey(String),
}

impl KeyStore {
    /// The account ids named by the keys (keys without one are left out).
    pub fn account_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.values().filter_map(|k| k.account_id.as_deref())
    }

    /// An empty store.
    pub fn new() -> KeyStore {
        KeyStore::default()
    }

    /// Parses the auth file:
    ///
    /// ```yaml
    /// credentials:
    ///   - accessKeyId: AKIAIOSFODNN7EXAMPLE
    ///     secretAccessKey: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
    ///     accountId: "123456789012"     # optional
    /// ```
    pub fn from_yaml(text: &str) -> Result<KeyStore, KeyStoreError> {
        let file: AuthFile = serde_yaml::from_str(text)?;
        let mut store = KeyStore::new();
        for (index, entry) in file.credentials.into_iter().enumerate() {
            if entry.access_key_id.is_empty() {
                return Err(KeyStoreError::EmptyField {
                    index,
                    field: "accessKeyId",
                });
            }
            if entry.secret_access_key.is_empty() {
                return Err(KeyStoreError::EmptyField {
                    index,
                    field: "secretAccessKey",
                });
            }
            if store.keys.contains_key(&entry.access_key_id) {
                return Err(KeyStoreError::DuplicateAccessKey(entry.access_key_id));
            }
            store.insert(
                &entry.access_key_id,
                &entry.secret_access_key,
                entry.account_id.as_deref(),
            );
        }
        Ok(store)
    }

    /// Adds or replaces one key.
    pub fn insert(&mut self, access_key_id: &str, secret: &str, account_id: Option<&str>) {
        self.keys.insert(
            access_key_id.to_owned(),
            Key {
                secret: secret.to_owned(),
                account_id: account_id.map(str::to_owned),
            },
        );
    }

    /// True when no key is configured (the caller may then run without auth).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Number of configured keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }
}

/// Who signed a verified request, and the scope they signed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The access key id from the credential.
    pub access_key_id: String,
    /// The account configured for that key, if any.
    pub account_id: Option<String>,
    /// Region from the credential scope, e.g. `us-east-1`.
    pub region: String,
    /// Service from the credential scope, e.g. `kinesis`.
    pub service: String,
}

/// Why a request was not authenticated. Each variant maps to the AWS error
/// name ([`error_type`](AuthError::error_type)), HTTP status and message that
/// Kinesis returns for the same fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Neither an `Authorization` header nor an `X-Amz-Algorithm` query parameter.
    #[error("{}", self.message())]
    MissingAuthenticationToken,
    /// Both header and query-string auth were supplied; AWS refuses to pick one.
    #[error("{}", self.message())]
    BothHeaderAndQueryAuth,
    /// Auth is present but incomplete or malformed (missing `Credential`,
    /// `Signature`, `SignedHeaders` or date, bad date format, unsupported
    /// algorithm, credential without 5 parts). Carries AWS's full message.
    #[error("{0}")]
    IncompleteSignature(String),
    /// The signing time is more than 15 minutes before the server clock, or a
    /// presigned URL's `X-Amz-Expires` has run out.
    #[error("{}", self.message())]
    SignatureExpired {
        /// The request's signing time, `YYYYMMDDTHHMMSSZ`.
        signed_at: String,
        /// The earliest signing time still accepted.
        earliest: String,
        /// The server's clock.
        now: String,
        /// The allowed age as AWS words it, e.g. `15 min.`.
        window: String,
    },
    /// The signing time is more than 15 minutes after the server clock.
    #[error("{}", self.message())]
    SignatureNotYetCurrent {
        /// The request's signing time.
        signed_at: String,
        /// The latest signing time accepted.
        latest: String,
        /// The server's clock.
        now: String,
    },
    /// `host` is not in the signed headers, so the signature could be replayed
    /// against another endpoint.
    #[error("{}", self.message())]
    HostNotSigned,
    /// The credential scope is wrong: empty region or service, terminator not
    /// `aws4_request`, or its date differs from the request date. Carries
    /// AWS's concatenated sentences.
    #[error("{0}")]
    InvalidCredentialScope(String),
    /// The access key id is not in the [`KeyStore`].
    #[error("{}", self.message())]
    UnrecognizedClient,
    /// `x-amz-content-sha256` is neither `UNSIGNED-PAYLOAD` nor the body's real SHA-256.
    #[error("{}", self.message())]
    PayloadHashMismatch,
    /// The signature does not match the one computed with the stored secret.
    #[error("{}", self.message())]
    SignatureMismatch,
}

impl AuthError {
    /// The AWS error name, sent as `__type` and `x-amzn-ErrorType`.
    pub fn error_type(&self) -> &'static str {
        match self {
            AuthError::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            AuthError::IncompleteSignature(_) => "IncompleteSignatureException",
            AuthError::UnrecognizedClient => "UnrecognizedClientException",
            AuthError::BothHeaderAndQueryAuth
            | AuthError::SignatureExpired { .. }
            | AuthError::SignatureNotYetCurrent { .. }
            | AuthError::HostNotSigned
            | AuthError::InvalidCredentialScope(_)
            | AuthError::PayloadHashMismatch
            | AuthError::SignatureMismatch => "InvalidSignatureException",
        }
    }

    /// HTTP status. AWS JSON-protocol services, Kinesis included, answer every
    /// authentication fault with 400 (not the 403 of the query protocols).
    pub fn status(&self) -> u16 {
        400
    }

    /// The message text AWS sends for this fault.
    pub fn message(&self) -> String {
        match self {
            AuthError::MissingAuthenticationToken => "Missing Authentication Token".into(),
            AuthError::BothHeaderAndQueryAuth => "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.".into(),
            AuthError::IncompleteSignature(m) | AuthError::InvalidCredentialScope(m) => m.clone(),
            AuthError::SignatureExpired { signed_at, earliest, now, window } => {
                format!("Signature expired: {signed_at} is now earlier than {earliest} ({now} - {window})")
            }
            AuthError::SignatureNotYetCurrent { signed_at, latest, now } => {
                format!("Signature not yet current: {signed_at} is still later than {latest} ({now} + 15 min.)")
            }
            AuthError::HostNotSigned => {
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".into()
            }
            AuthError::UnrecognizedClient => {
                "The security token included in the request is invalid.".into()
            }
            AuthError::PayloadHashMismatch => {
                "The provided 'x-amz-content-sha256' header does not match what was computed.".into()
            }
            AuthError::SignatureMismatch => "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.".into(),
        }
    }
}

/// The auth parameters, whichever form they came in.
struct AuthParams {
    algorithm: String,
    credential: String,
    signed_headers: String,
    signature: String,
    /// Raw date text as it must appear in the string to sign.
    date_text: String,
    signed_at: u64,
    /// `X-Amz-Expires` for presigned requests.
    expires: Option<u64>,
    presigned: bool,
}

/// Verifies the SigV4 signature of a request.
///
/// `body` is the complete request body. When `x-amz-content-sha256` is present
/// its value is what was signed, but it must also be `UNSIGNED-PAYLOAD` or the
/// body's real hash, so a signature cannot be reused for a different body.
pub fn verify(
    parts: &Parts,
    body: &[u8],
    keys: &KeyStore,
    now: SystemTime,
) -> Result<Identity, AuthError> {
    let now = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let query = parse_query(parts.uri.query().unwrap_or(""));
    let has_query_auth = query.iter().any(|(k, _)| k == "X-Amz-Algorithm");
    let auth_header = parts.headers.get(http::header::AUTHORIZATION);

    let params = match (auth_header, has_query_auth) {
        (Some(_), true) => return Err(AuthError::BothHeaderAndQueryAuth),
        (None, false) => return Err(AuthError::MissingAuthenticationToken),
        (Some(header), false) => header_params(parts, header.as_bytes())?,
        (None, true) => query_params(&query)?,
    };

    check_time(&params, now)?;

    let signed_headers: Vec<&str> = params.signed_headers.split(';').collect();
    if !signed_headers
        .iter()
        .any(|h| h.eq_ignore_ascii_case("host") || *h == ":authority")
    {
        return Err(AuthError::HostNotSigned);
    }

    if params.algorithm != ALGORITHM {
        return Err(AuthError::IncompleteSignature(format!(
            "Unsupported AWS 'algorithm': '{}' (only AWS4-HMAC-SHA256 for now). ",
            params.algorithm
        )));
    }

    // AWS ignores trailing slashes before counting the five elements.
    let credential = params.credential.trim_end_matches('/');
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key_id, scope_date, region, service, terminator] = scope[..] else {
        return Err(AuthError::IncompleteSignature(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
        )));
    };
    check_scope(scope_date, region, service, terminator, &params.date_text)?;

    let key = keys
        .keys
        .get(access_key_id)
        .ok_or(AuthError::UnrecognizedClient)?;

    let payload_hash = payload_hash(parts, body)?;
    let canonical = canonical_request(parts, &query, &signed_headers, &payload_hash, &params);
    let string_to_sign = format!(
        "{ALGORITHM}\n{}\n{scope_date}/{region}/{service}/{TERMINATOR}\n{}",
        params.date_text,
        hex(&Sha256::digest(&canonical))
    );
    let signing_key = signing_key(&key.secret, scope_date, region, service);
    let provided = decode_hex(&params.signature).ok_or(AuthError::SignatureMismatch)?;
    let mut mac = hmac(&signing_key);
    mac.update(string_to_sign.as_bytes());
    // `verify_slice` compares in constant time, so timing leaks nothing about
    // how much of a forged signature was right.
    mac.verify_slice(&provided)
        .map_err(|_| AuthError::SignatureMismatch)?;

    Ok(Identity {
        access_key_id: access_key_id.to_owned(),
        account_id: key.account_id.clone(),
        region: region.to_owned(),
        service: service.to_owned(),
    })
}

/// Reads `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.
fn header_params(parts: &Parts, raw: &[u8]) -> Result<AuthParams, AuthError> {
    let header = String::from_utf8_lossy(raw);
    // Like AWS, split on commas and spaces; the first token is the algorithm.
    let mut tokens = header.split([',', ' ']).filter(|t| !t.is_empty());
    let algorithm = tokens.next().unwrap_or("").to_owned();
    let mut fields: HashMap<&str, &str> = HashMap::new();
    for token in tokens {
        if let Some((k, v)) = token.split_once('=') {
            fields.entry(k).or_insert(v);
        }
    }
    let field = |name: &str| fields.get(name).copied().filter(|v| !v.is_empty());

    let amz_date = header_str(parts, "x-amz-date");
    let http_date = header_str(parts, "date");
    let mut message = String::new();
    for name in ["Credential", "Signature", "SignedHeaders"] {
        if field(name).is_none() {
            message.push_str(&format!(
                "Authorization header requires '{name}' parameter. "
            ));
        }
    }
    if amz_date.is_none() && http_date.is_none() {
        message.push_str(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ",
        );
    }
    if !message.is_empty() {
        message.push_str("Authorization=");
        message.push_str(&header);
        return Err(AuthError::IncompleteSignature(message));
    }

    // X-Amz-Date wins over Date; SDKs always send X-Amz-Date, but a Date-only
    // request is legal SigV4 and its string to sign uses the ISO-8601 form.
    let (date_text, signed_at) = match amz_date {
        Some(text) => (text.to_owned(), parse_amz_date(text)?),
        None => {
            let text = http_date.unwrap_or("");
            let secs = parse_http_date(text).ok_or_else(|| bad_date(text))?;
            (format_amz_date(secs), secs)
        }
    };
    Ok(AuthParams {
        algorithm,
        credential: field("Credential").unwrap_or("").to_owned(),
        signed_headers: field("SignedHeaders").unwrap_or("").to_owned(),
        signature: field("Signature").unwrap_or("").to_owned(),
        date_text,
        signed_at,
        expires: None,
        presigned: false,
    })
}

/// Reads presigned-URL auth from the (already decoded) query parameters.
fn query_params(query: &[(String, String)]) -> Result<AuthParams, AuthError> {
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let mut message = String::new();
    for name in [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Signature",
        "X-Amz-SignedHeaders",
        "X-Amz-Date",
    ] {
        if get(name).is_none() {
            message.push_str(&format!(
                "AWS query-string parameters must include '{name}'. "
            ));
        }
    }
    if !message.is_empty() {
        message.push_str("Re-examine the query-string parameters.");
        return Err(AuthError::IncompleteSignature(message));
    }
    let date_text = get("X-Amz-Date").unwrap_or("").to_owned();
    let signed_at = parse_amz_date(&date_text)?;
    let expires = match get("X-Amz-Expires") {
        None => None,
        Some(text) => {
            let secs: u64 = text.parse().map_err(|_| {
                AuthError::IncompleteSignature(format!(
                    "X-Amz-Expires should be a number, got '{text}'."
                ))
            })?;
            if secs > MAX_PRESIGN_EXPIRES_SECS {
                return Err(AuthError::IncompleteSignature(
                    "X-Amz-Expires must be less than a week (in seconds) that is 604800".into(),
                ));
            }
            Some(secs)
        }
    };
    Ok(AuthParams {
        algorithm: get("X-Amz-Algorithm").unwrap_or("").to_owned(),
        credential: get("X-Amz-Credential").unwrap_or("").to_owned(),
        signed_headers: get("X-Amz-SignedHeaders").unwrap_or("").to_owned(),
        signature: get("X-Amz-Signature").unwrap_or("").to_owned(),
        date_text,
        signed_at,
        expires,
        presigned: true,
    })
}

fn header_str<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn bad_date(text: &str) -> AuthError {
    AuthError::IncompleteSignature(format!(
        "Date must be in ISO-8601 'basic format'. Got '{text}'. See http://en.wikipedia.org/wiki/ISO_8601"
    ))
}

/// Rejects requests signed too long ago or too far in the future.
fn check_time(params: &AuthParams, now: u64) -> Result<(), AuthError> {
    let signed = params.signed_at;
    if let Some(expires) = params.expires {
        // A presigned URL is good from its date until date + X-Amz-Expires.
        if now > signed.saturating_add(expires) {
            return Err(AuthError::SignatureExpired {
                signed_at: params.date_text.clone(),
                earliest: format_amz_date(now.saturating_sub(expires)),
                now: format_amz_date(now),
                window: format!("{expires} sec."),
            });
        }
    } else if signed.saturating_add(MAX_SKEW_SECS) < now {
        return Err(AuthError::SignatureExpired {
            signed_at: params.date_text.clone(),
            earliest: format_amz_date(now.saturating_sub(MAX_SKEW_SECS)),
            now: format_amz_date(now),
            window: "15 min.".into(),
        });
    }
    if signed > now.saturating_add(MAX_SKEW_SECS) {
        return Err(AuthError::SignatureNotYetCurrent {
            signed_at: params.date_text.clone(),
            latest: format_amz_date(now.saturating_add(MAX_SKEW_SECS)),
            now: format_amz_date(now),
        });
    }
    Ok(())
}

/// AWS reports every scope fault at once, each sentence ending in ". ".
fn check_scope(
    scope_date: &str,
    region: &str,
    service: &str,
    terminator: &str,
    date_text: &str,
) -> Result<(), AuthError> {
    let mut message = String::new();
    if region.is_empty() {
        message.push_str(&format!(
            "Credential should be scoped to a valid region, not '{region}'. "
        ));
    }
    if service.is_empty() {
        message.push_str(&format!(
            "Credential should be scoped to correct service: '{service}'. "
        ));
    }
    if terminator != TERMINATOR {
        message.push_str(&format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'. "
        ));
    }
    let day = date_text.get(..8).unwrap_or(date_text);
    if scope_date != day {
        message.push_str(&format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{scope_date}' != '{day}', from '{date_text}'. "
        ));
    }
    if message.is_empty() {
        Ok(())
    } else {
        Err(AuthError::InvalidCredentialScope(message))
    }
}

/// The payload hash to sign with, checking a client-declared one against the body.
fn payload_hash(parts: &Parts, body: &[u8]) -> Result<String, AuthError> {
    let actual = hex(&Sha256::digest(body));
    match parts.headers.get("x-amz-content-sha256") {
        None => Ok(actual),
        Some(declared) => {
            let declared = declared
                .to_str()
                .map_err(|_| AuthError::PayloadHashMismatch)?
                .trim();
            if declared == UNSIGNED_PAYLOAD {
                Ok(declared.to_owned())
            } else if declared.eq_ignore_ascii_case(&actual) {
                // Sign with the text as sent: the client hashed that exact string.
                Ok(declared.to_owned())
            } else {
                Err(AuthError::PayloadHashMismatch)
            }
        }
    }
}

/// Builds the canonical request as bytes, since signed header values need not be UTF-8.
fn canonical_request(
    parts: &Parts,
    query: &[(String, String)],
    signed_headers: &[&str],
    payload_hash: &str,
    params: &AuthParams,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_uri(parts.uri.path()).as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_query(query, params.presigned).as_bytes());
    out.push(b'\n');
    for name in signed_headers {
        let lower = name.to_ascii_lowercase();
        out.extend_from_slice(lower.as_bytes());
        out.push(b':');
        let values: Vec<&[u8]> = parts
            .headers
            .get_all(lower.as_str())
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        if values.is_empty() && (lower == "host" || lower == ":authority") {
            // HTTP/2 clients (the JS v3 SDK) send `:authority`, not `Host`;
            // the server sees it as the URI authority.
            out.extend_from_slice(authority_host(&parts.uri).as_bytes());
        }
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&collapse_spaces(value));
        }
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(params.signed_headers.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload_hash.as_bytes());
    out
}

/// The host the client signed when it had only a URI: signers drop the port
/// when it is the scheme's default, as the Host header rules say.
fn authority_host(uri: &http::Uri) -> String {
    let Some(authority) = uri.authority() else {
        return String::new();
    };
    let host = authority.host();
    match (uri.scheme_str(), authority.port_u16()) {
        (Some("http"), Some(80)) | (Some("https"), Some(443)) | (_, None) => host.to_owned(),
        (_, Some(port)) => format!("{host}:{port}"),
    }
}

/// Trims spaces at both ends and collapses runs of spaces into one, the
/// SigV4 header-value rule.
fn collapse_spaces(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    for &b in value {
        if b == b' ' && (out.is_empty() || out.last() == Some(&b' ')) {
            continue;
        }
        out.push(b);
    }
    while out.last() == Some(&b' ') {
        out.pop();
    }
    out
}

/// Non-S3 services normalise the path (drop `.`/`..` and empty segments) and
/// then URI-encode the path as it appeared on the wire, so an already-encoded
/// `%3D` becomes `%253D` (the "double encoding" of the spec).
fn canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut normalized = String::from("/");
    normalized.push_str(&segments.join("/"));
    let trailing = ["/", "/.", "/.."].iter().any(|s| path.ends_with(s));
    if trailing && !normalized.ends_with('/') {
        normalized.push('/');
    }
    uri_encode(normalized.as_bytes(), false)
}

/// Splits a raw query string into decoded pairs. `+` means space, as in the
/// form encoding the SDK signers parse queries with.
fn parse_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Re-encodes every pair strictly and sorts by key then value; presigned
/// requests leave out the signature itself.
fn canonical_query(query: &[(String, String)], presigned: bool) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .filter(|(k, _)| !(presigned && k == "X-Amz-Signature"))
        .map(|(k, v)| {
            (
                uri_encode(k.as_bytes(), true),
                uri_encode(v.as_bytes(), true),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Encodes every byte except the RFC 3986 unreserved set (and `/` in paths).
fn uri_encode(input: &[u8], encode_slash: bool) -> String {
    let mut out = String::with_capacity(input.len());
    for &b in input {
        let unreserved = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~');
        if unreserved || (b == b'/' && !encode_slash) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` and `+`; a malformed escape is kept literally rather than rejected.
fn percent_decode(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex_val(bytes[i + 1]), hex_val(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks(2)
        .map(|pair| Some(hex_val(pair[0])? << 4 | hex_val(pair[1])?))
        .collect()
}

fn hmac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

fn hmac_bytes(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = hmac(key);
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request").
fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac_bytes(format!("AWS4{secret}").as_bytes(), date);
    let k_region = hmac_bytes(&k_date, region);
    let k_service = hmac_bytes(&k_region, service);
    hmac_bytes(&k_service, TERMINATOR)
}

/// Parses `YYYYMMDDTHHMMSSZ` into Unix seconds.
fn parse_amz_date(text: &str) -> Result<u64, AuthError> {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u64> {
        let part = b.get(range)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let parsed = (|| {
        if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
            return None;
        }
        unix_seconds(
            digits(0..4)?,
            digits(4..6)?,
            digits(6..8)?,
            digits(9..11)?,
            digits(11..13)?,
            digits(13..15)?,
        )
    })();
    parsed.ok_or_else(|| bad_date(text))
}

/// Parses an RFC 7231 IMF-fixdate, `Wed, 26 Nov 2026 00:00:00 GMT`.
fn parse_http_date(text: &str) -> Option<u64> {
    let mut it = text.split_ascii_whitespace();
    let _weekday = it.next()?;
    let day: u64 = it.next()?.parse().ok()?;
    let month = match it.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: u64 = it.next()?.parse().ok()?;
    let mut hms = it.next()?.split(':');
    let hour: u64 = hms.next()?.parse().ok()?;
    let minute: u64 = hms.next()?.parse().ok()?;
    let second: u64 = hms.next()?.parse().ok()?;
    if it.next()? != "GMT" || it.next().is_some() || hms.next().is_some() {
        return None;
    }
    unix_seconds(year, month, day, hour, minute, second)
}

fn unix_seconds(year: u64, month: u64, day: u64, h: u64, m: u64, s: u64) -> Option<u64> {
    if !(1970..=9999).contains(&year)
        || !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || h > 23
        || m > 59
        || s > 60
    {
        return None;
    }
    let days = days_from_civil(year as i64, month as i64, day as i64);
    u64::try_from(days)
        .ok()
        .map(|d| d * 86_400 + h * 3600 + m * 60 + s)
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats Unix seconds as `YYYYMMDDTHHMMSSZ`.
fn format_amz_date(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = crate::clock::civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUITE_AKID: &str = "AKIDEXAMPLE";
    const SUITE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn suite_keys() -> KeyStore {
        let mut keys = KeyStore::new();
        keys.insert(SUITE_AKID, SUITE_SECRET, Some("123456789012"));
        keys
    }

    /// 2015-08-30T12:36:00Z, the time of every AWS test-suite vector.
    fn suite_now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut builder = http::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).expect("valid test request").into_parts().0
    }

    fn suite_auth(signed_headers: &str, signature: &str) -> String {
        format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders={signed_headers}, Signature={signature}")
    }

    /// Signs like an SDK would, with this module's own primitives: the AWS
    /// vectors below pin those primitives, these requests exercise the checks.
    fn sign(parts: &mut Parts, body: &[u8], akid: &str, secret: &str, date: &str) {
        let signed: Vec<String> = {
            let mut names: Vec<String> = parts
                .headers
                .keys()
                .map(|n| n.as_str().to_owned())
                .collect();
            names.sort();
            names.dedup();
            names
        };
        let signed_refs: Vec<&str> = signed.iter().map(String::as_str).collect();
        let params = AuthParams {
            algorithm: ALGORITHM.into(),
            credential: String::new(),
            signed_headers: signed.join(";"),
            signature: String::new(),
            date_text: date.into(),
            signed_at: 0,
            expires: None,
            presigned: false,
        };
        let hash = payload_hash(parts, body).expect("consistent payload hash");
        let query = parse_query(parts.uri.query().unwrap_or(""));
        let creq = canonical_request(parts, &query, &signed_refs, &hash, &params);
        let day = &date[..8];
        let sts = format!(
            "{ALGORITHM}\n{date}\n{day}/us-east-1/kinesis/aws4_request\n{}",
            hex(&Sha256::digest(&creq))
        );
        let key = signing_key(secret, day, "us-east-1", "kinesis");
        let sig = hex(&hmac_bytes(&key, &sts));
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={akid}/{day}/us-east-1/kinesis/aws4_request, SignedHeaders={}, Signature={sig}",
            params.signed_headers
        );
        parts
            .headers
            .insert("authorization", auth.parse().expect("ascii header"));
    }

    const KINESIS_DATE: &str = "20261126T000000Z";

    fn kinesis_now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(parse_amz_date(KINESIS_DATE).expect("valid date"))
    }

    fn kinesis_request(body: &[u8]) -> Parts {
        let mut p = parts(
            "POST",
            "/",
            &[
                ("host", "kinesis.us-east-1.amazonaws.com"),
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amz-target", "Kinesis_20131202.ListStreams"),
                ("x-amz-date", KINESIS_DATE),
            ],
        );
        sign(&mut p, body, SUITE_AKID, SUITE_SECRET, KINESIS_DATE);
        p
    }

    #[test]
    fn accepts_the_aws_get_vanilla_vector() {
        let p = parts(
            "GET",
            "/",
            &[
                ("host", "example.amazonaws.com"),
                ("x-amz-date", "20150830T123600Z"),
                (
                    "authorization",
                    &suite_auth(
                        "host;x-amz-date",
                        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
                    ),
                ),
            ],
        );
        let id = verify(&p, b"", &suite_keys(), suite_now()).expect("valid vector");
        assert_eq!(
            id,
            Identity {
                access_key_id: SUITE_AKID.into(),
                account_id: Some("123456789012".into()),
                region: "us-east-1".into(),
                service: "service".into(),
            }
        );
    }

    #[test]
    fn accepts_the_aws_query_order_vector_with_unsorted_parameters() {
        let p = parts(
            "GET",
            "/?Param2=value2&Param1=value1",
            &[
                ("host", "example.amazonaws.com"),
                ("x-amz-date", "20150830T123600Z"),
                (
                    "authorization",
                    &suite_auth(
                        "host;x-amz-date",
                        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
                    ),
                ),
            ],
        );
        verify(&p, b"", &suite_keys(), suite_now()).expect("valid vector");
    }

    #[test]
    fn double_encodes_paths_like_the_aws_double_encode_vectors() {
        // Canonical URIs from the suite's double-encode-path and double-url-encode cases.
        assert_eq!(
            canonical_uri("/test/@connections/JBDvjfGEIAMCERw%3D"),
            "/test/%40connections/JBDvjfGEIAMCERw%253D"
        );
        assert_eq!(
            canonical_uri("/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-west-2%3A892717189312%3Afunction%3Amy-rusty-fun/invocations"),
            "/2015-03-31/functions/arn%253Aaws%253Alambda%253Aus-west-2%253A892717189312%253Afunction%253Amy-rusty-fun/invocations"
        );
    }

    #[test]
    fn accepts_the_aws_duplicate_header_and_trim_vectors() {
        let p = parts(
            "GET",
            "/",
            &[
                ("host", "example.amazonaws.com"),
                ("my-header1", "value2"),
                ("my-header1", "value2"),
                ("my-header1", "value1"),
                ("x-amz-date", "20150830T123600Z"),
                (
                    "authorization",
                    &suite_auth(
                        "host;my-header1;x-amz-date",
                        "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
                    ),
                ),
            ],
        );
        verify(&p, b"", &suite_keys(), suite_now()).expect("duplicate-header vector");

        let p = parts(
            "GET",
            "/",
            &[
                ("host", "example.amazonaws.com"),
                ("my-header1", " value1"),
                ("my-header2", " \"a   b   c\""),
                ("x-amz-date", "20150830T123600Z"),
                (
                    "authorization",
                    &suite_auth(
                        "host;my-header1;my-header2;x-amz-date",
                        "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
                    ),
                ),
            ],
        );
        verify(&p, b"", &suite_keys(), suite_now()).expect("trim vector");
    }

    #[test]
    fn accepts_the_aws_form_body_vector_with_declared_content_sha256() {
        let p = parts(
            "POST",
            "/",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("host", "example.amazonaws.com"),
                ("content-length", "13"),
                ("x-amz-date", "20150830T123600Z"),
                (
                    "x-amz-content-sha256",
                    "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
                ),
                (
                    "authorization",
                    &suite_auth(
                        "content-length;content-type;host;x-amz-content-sha256;x-amz-date",
                        "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b",
                    ),
                ),
            ],
        );
        verify(&p, b"Param1=value1", &suite_keys(), suite_now()).expect("valid vector");
    }

    #[test]
    fn accepts_the_aws_presigned_vector_with_session_token() {
        let p = parts(
            "GET",
            "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host&X-Amz-Expires=3600&X-Amz-Security-Token=6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267&X-Amz-Signature=7ff2b50b376cb4d151970630573d6291dc128cc5c2a12ffb237f73cc53f67b6c",
            &[("host", "example.amazonaws.com")],
        );
        verify(&p, b"", &suite_keys(), suite_now()).expect("valid vector");
    }

    #[test]
    fn accepts_a_presigned_url_until_x_amz_expires_runs_out() {
        let p = parts(
            "GET",
            "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=e93c787ed7f371d5c6b165c1b38ede9550f4dce4144713e844b25b7192d3865d",
            &[("host", "example.amazonaws.com")],
        );
        let later = suite_now() + Duration::from_secs(3600);
        verify(&p, b"", &suite_keys(), later).expect("valid until expiry");
        let err =
            verify(&p, b"", &suite_keys(), later + Duration::from_secs(1)).expect_err("expired");
        assert_eq!(err.error_type(), "InvalidSignatureException");
        assert!(err
            .message()
            .starts_with("Signature expired: 20150830T123600Z"));
    }

    #[test]
    fn accepts_a_signed_kinesis_post_and_reports_region_and_service() {
        let body = br#"{"Limit":10}"#;
        let id = verify(&kinesis_request(body), body, &suite_keys(), kinesis_now())
            .expect("valid request");
        assert_eq!(id.region, "us-east-1");
        assert_eq!(id.service, "kinesis");
    }

    #[test]
    fn rejects_signature_from_wrong_secret() {
        let body = b"{}";
        let mut keys = KeyStore::new();
        keys.insert(SUITE_AKID, "not-the-secret", None);
        let err = verify(&kinesis_request(body), body, &keys, kinesis_now()).expect_err("bad");
        assert_eq!(err, AuthError::SignatureMismatch);
        assert_eq!(err.error_type(), "InvalidSignatureException");
        assert_eq!(err.status(), 400);
        assert_eq!(err.message(), "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.");
    }

    #[test]
    fn rejects_a_body_changed_after_signing() {
        let p = kinesis_request(b"{}");
        assert_eq!(
            verify(&p, b"{\"x\":1}", &suite_keys(), kinesis_now()),
            Err(AuthError::SignatureMismatch)
        );
    }

    #[test]
    fn rejects_unknown_access_key_as_unrecognized_client() {
        let err = verify(
            &kinesis_request(b"{}"),
            b"{}",
            &KeyStore::new(),
            kinesis_now(),
        )
        .expect_err("unknown key");
        assert_eq!(err.error_type(), "UnrecognizedClientException");
        assert_eq!(err.status(), 400);
        assert_eq!(
            err.message(),
            "The security token included in the request is invalid."
        );
    }

    #[test]
    fn rejects_a_request_without_any_auth_as_missing_token() {
        let p = parts("POST", "/", &[("host", "localhost")]);
        let err = verify(&p, b"", &suite_keys(), kinesis_now()).expect_err("no auth");
        assert_eq!(err.error_type(), "MissingAuthenticationTokenException");
        assert_eq!(err.message(), "Missing Authentication Token");
        assert_eq!(err.status(), 400);
    }

    #[test]
    fn rejects_header_and_query_auth_together() {
        let p = parts(
            "POST",
            "/?X-Amz-Algorithm=AWS4-HMAC-SHA256",
            &[("authorization", "AWS4-HMAC-SHA256 Credential=a")],
        );
        let err = verify(&p, b"", &suite_keys(), kinesis_now()).expect_err("both");
        assert_eq!(err.error_type(), "InvalidSignatureException");
        assert_eq!(err.message(), "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.");
    }

    #[test]
    fn lists_every_missing_authorization_part_in_one_message() {
        let p = parts("POST", "/", &[("authorization", "AWS4-HMAC-SHA256")]);
        let err = verify(&p, b"", &suite_keys(), kinesis_now()).expect_err("incomplete");
        assert_eq!(err.error_type(), "IncompleteSignatureException");
        assert_eq!(err.message(), "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=AWS4-HMAC-SHA256");
    }

    #[test]
    fn lists_every_missing_presign_parameter_in_one_message() {
        let p = parts("GET", "/?X-Amz-Algorithm=AWS4-HMAC-SHA256", &[]);
        let err = verify(&p, b"", &suite_keys(), kinesis_now()).expect_err("incomplete");
        assert_eq!(err.error_type(), "IncompleteSignatureException");
        assert_eq!(err.message(), "AWS query-string parameters must include 'X-Amz-Credential'. AWS query-string parameters must include 'X-Amz-Signature'. AWS query-string parameters must include 'X-Amz-SignedHeaders'. AWS query-string parameters must include 'X-Amz-Date'. Re-examine the query-string parameters.");
    }

    #[test]
    fn rejects_a_date_not_in_iso8601_basic_format() {
        let p = parts(
            "POST",
            "/",
            &[
                ("x-amz-date", "2026-11-26T00:00:00Z"),
                (
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host, Signature=00",
                ),
            ],
        );
        let err = verify(&p, b"", &suite_keys(), kinesis_now()).expect_err("bad date");
        assert_eq!(err.error_type(), "IncompleteSignatureException");
        assert_eq!(err.message(), "Date must be in ISO-8601 'basic format'. Got '2026-11-26T00:00:00Z'. See http://en.wikipedia.org/wiki/ISO_8601");
    }

    #[test]
    fn rejects_a_signature_older_than_15_minutes_with_aws_wording() {
        let p = kinesis_request(b"{}");
        let now = kinesis_now() + Duration::from_secs(30 * 60);
        let err = verify(&p, b"{}", &suite_keys(), now).expect_err("expired");
        assert_eq!(err.error_type(), "InvalidSignatureException");
        assert_eq!(err.message(), "Signature expired: 20261126T000000Z is now earlier than 20261126T001500Z (20261126T003000Z - 15 min.)");
    }

    #[test]
    fn accepts_a_signature_exactly_15_minutes_old() {
        let now = kinesis_now() + Duration::from_secs(15 * 60);
        verify(&kinesis_request(b"{}"), b"{}", &suite_keys(), now).expect("inside window");
    }

    #[test]
    fn rejects_a_signature_more_than_15_minutes_in_the_future() {
        let now = kinesis_now() - Duration::from_secs(16 * 60);
        let err = verify(&kinesis_request(b"{}"), b"{}", &suite_keys(), now).expect_err("future");
        assert_eq!(err.error_type(), "InvalidSignatureException");
        assert_eq!(err.message(), "Signature not yet current: 20261126T000000Z is still later than 20261125T235900Z (20261125T234400Z + 15 min.)");
    }

    #[test]
    fn rejects_a_signature_that_does_not_sign_host() {
        let p = parts(
            "POST",
            "/",
            &[
                ("x-amz-date", KINESIS_DATE),
                ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261126/us-east-1/kinesis/aws4_request, SignedHeaders=x-amz-date, Signature=00"),
            ],
        );
        let err = verify(&p, b"", &suite_keys(), kinesis_now()).expect_err("host unsigned");
        assert_eq!(err, AuthError::HostNotSigned);
        assert_eq!(err.error_type(), "InvalidSignatureException");
    }

    #[test]
    fn rejects_an_unsupported_algorithm() {
        let p = parts(
            "POST",
            "/",
            &[
                ("x-amz-date", KINESIS_DATE),
                ("authorization", "AWS4-HMAC-SHA512 Credential=AKIDEXAMPLE/20261126/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=00"),
            ],
        );
        let err = verify(&p, b"", &suite_keys(), kinesis_now()).expect_err("algorithm");
        assert_eq!(err.error_type(), "IncompleteSignatureException");
        assert_eq!(
            err.message(),
            "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512' (only AWS4-HMAC-SHA256 for now). "
        );
    }

    #[test]
    fn rejects_a_credential_without_five_elements() {
        let p = parts(
            "POST",
            "/",
            &[
                ("x-amz-date", KINESIS_DATE),
                ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261126/us-east-1/kinesis/, SignedHeaders=host, Signature=00"),
            ],
        );
        let err = verify(&p, b"", &suite_keys(), kinesis_now()).expect_err("credential");
        assert_eq!(err.error_type(), "IncompleteSignatureException");
        assert_eq!(err.message(), "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'AKIDEXAMPLE/20261126/us-east-1/kinesis'");
    }

    #[test]
    fn reports_every_credential_scope_fault_at_once() {
        let p = parts(
            "POST",
            "/",
            &[
                ("x-amz-date", KINESIS_DATE),
                ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261125/us-east-1/kinesis/aws5_request, SignedHeaders=host, Signature=00"),
            ],
        );
        let err = verify(&p, b"", &suite_keys(), kinesis_now()).expect_err("scope");
        assert_eq!(err.error_type(), "InvalidSignatureException");
        assert_eq!(err.message(), "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20261125' != '20261126', from '20261126T000000Z'. ");
    }

    #[test]
    fn accepts_unsigned_payload_whatever_the_body() {
        let mut p = parts(
            "POST",
            "/",
            &[
                ("host", "localhost:4567"),
                ("x-amz-date", KINESIS_DATE),
                ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
            ],
        );
        sign(&mut p, b"anything", SUITE_AKID, SUITE_SECRET, KINESIS_DATE);
        verify(&p, b"something else", &suite_keys(), kinesis_now()).expect("unsigned payload");
    }

    #[test]
    fn rejects_a_declared_content_sha256_that_differs_from_the_body() {
        let wrong = hex(&Sha256::digest(b"other"));
        let mut p = parts(
            "POST",
            "/",
            &[
                ("host", "localhost"),
                ("x-amz-date", KINESIS_DATE),
                ("x-amz-content-sha256", wrong.as_str()),
            ],
        );
        // Sign as a client that lied about its body: the signature itself is
        // consistent with the declared hash.
        let hash_of_other = b"other";
        sign(
            &mut p,
            hash_of_other,
            SUITE_AKID,
            SUITE_SECRET,
            KINESIS_DATE,
        );
        let err = verify(&p, b"{}", &suite_keys(), kinesis_now()).expect_err("hash mismatch");
        assert_eq!(err, AuthError::PayloadHashMismatch);
        assert_eq!(err.error_type(), "InvalidSignatureException");
    }

    #[test]
    fn uses_the_uri_authority_when_an_http2_request_has_no_host_header() {
        let mut p = parts(
            "POST",
            "https://kinesis.us-east-1.amazonaws.com/",
            &[("x-amz-date", KINESIS_DATE)],
        );
        // Sign as if `host` carried the authority, as HTTP/2 clients do.
        p.headers.insert(
            "host",
            "kinesis.us-east-1.amazonaws.com".parse().expect("ascii"),
        );
        sign(&mut p, b"{}", SUITE_AKID, SUITE_SECRET, KINESIS_DATE);
        p.headers.remove("host");
        verify(&p, b"{}", &suite_keys(), kinesis_now()).expect("authority stands in for host");
    }

    #[test]
    fn accepts_a_date_header_when_x_amz_date_is_absent() {
        let mut p = parts(
            "POST",
            "/",
            &[
                ("host", "localhost"),
                ("date", "Thu, 26 Nov 2026 00:00:00 GMT"),
            ],
        );
        sign(&mut p, b"", SUITE_AKID, SUITE_SECRET, KINESIS_DATE);
        verify(&p, b"", &suite_keys(), kinesis_now()).expect("Date header");
    }

    #[test]
    fn canonicalises_paths_like_non_s3_services() {
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(canonical_uri("//example//"), "/example/");
        assert_eq!(canonical_uri("/example1/example2/../.."), "/");
        assert_eq!(canonical_uri("/./example/."), "/example/");
        assert_eq!(canonical_uri("/a%20b/c d"), "/a%2520b/c%20d");
    }

    #[test]
    fn canonical_query_sorts_encoded_pairs_and_drops_the_presigned_signature() {
        let q = parse_query("b=2&a=x+y&a=%41&X-Amz-Signature=abc&empty");
        assert_eq!(
            canonical_query(&q, false),
            "X-Amz-Signature=abc&a=A&a=x%20y&b=2&empty="
        );
        assert_eq!(canonical_query(&q, true), "a=A&a=x%20y&b=2&empty=");
    }

    #[test]
    fn collapses_runs_of_spaces_inside_header_values() {
        assert_eq!(collapse_spaces(b"  a   b  c  "), b"a b c".to_vec());
    }

    #[test]
    fn formats_and_parses_dates_across_leap_years() {
        for text in ["19700101T000000Z", "20000229T235959Z", "20261126T001500Z"] {
            let secs = parse_amz_date(text).expect("valid");
            assert_eq!(format_amz_date(secs), text);
        }
        assert!(parse_amz_date("20230229T000000Z").is_err());
        assert_eq!(
            parse_http_date("Sun, 30 Aug 2015 12:36:00 GMT"),
            parse_amz_date("20150830T123600Z").ok()
        );
    }

    #[test]
    fn loads_keys_from_the_yaml_auth_file() {
        let store = KeyStore::from_yaml(
            "credentials:\n  - accessKeyId: AKIAIOSFODNN7EXAMPLE\n    secretAccessKey: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n    accountId: \"123456789012\"\n  - accessKeyId: AKID2\n    secretAccessKey: s2\n",
        )
        .expect("valid file");
        assert_eq!(store.len(), 2);
        assert!(!store.is_empty());
        let key = store.keys.get("AKIAIOSFODNN7EXAMPLE").expect("loaded");
        assert_eq!(key.account_id.as_deref(), Some("123456789012"));
        assert_eq!(
            store.keys.get("AKID2").and_then(|k| k.account_id.clone()),
            None
        );
        assert!(
            !format!("{store:?}").contains("EXAMPLEKEY"),
            "Debug must not leak secrets"
        );
    }

    #[test]
    fn rejects_auth_files_with_duplicates_empty_fields_or_unknown_keys() {
        let dup = "credentials:\n  - {accessKeyId: A, secretAccessKey: s}\n  - {accessKeyId: A, secretAccessKey: t}\n";
        assert!(
            matches!(KeyStore::from_yaml(dup), Err(KeyStoreError::DuplicateAccessKey(k)) if k == "A")
        );
        let empty = "credentials:\n  - {accessKeyId: A, secretAccessKey: ''}\n";
        assert!(matches!(
            KeyStore::from_yaml(empty),
            Err(KeyStoreError::EmptyField {
                index: 0,
                field: "secretAccessKey"
            })
        ));
        let typo = "credentials:\n  - {accessKeyID: A, secretAccessKey: s}\n";
        assert!(matches!(
            KeyStore::from_yaml(typo),
            Err(KeyStoreError::Yaml(_))
        ));
    }
}
