//! The two request/response codecs: `application/x-amz-json-1.1` and
//! `application/x-amz-cbor-1.1`. Responses use the request's protocol.

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::AwsError;
use super::types::BASE64_ERROR;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Json,
    Cbor,
}

impl Protocol {
    /// The protocol for a `Content-Type` header value (parameters after `;` ignored).
    pub fn from_content_type(ct: &str) -> Option<Protocol> {
        let ct = ct.split(';').next().unwrap_or("").trim();
        match ct.to_ascii_lowercase().as_str() {
            "application/x-amz-json-1.1" => Some(Protocol::Json),
            "application/x-amz-cbor-1.1" => Some(Protocol::Cbor),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Protocol::Json => "application/x-amz-json-1.1",
            Protocol::Cbor => "application/x-amz-cbor-1.1",
        }
    }
}

/// Decodes a request body. An empty body is an empty structure, as in AWS's services, so that
/// missing required members are reported by validation rather than as a parse error.
pub fn decode<T: DeserializeOwned>(protocol: Protocol, body: &[u8]) -> Result<T, AwsError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        match protocol {
            Protocol::Json => b"{}",
            Protocol::Cbor => &[0xa0],
        }
    } else {
        body
    };
    match protocol {
        Protocol::Json => {
            super::types::start_blob_chunks(body.len());
            serde_json::from_slice(body).map_err(|e| json_error(&e))
        }
        Protocol::Cbor => ciborium::from_reader(body).map_err(|e| {
            let text = e.to_string();
            blob_error(&text)
                .unwrap_or_else(|| AwsError::serialization(format!("Invalid CBOR: {text}")))
        }),
    }
}

fn json_error(e: &serde_json::Error) -> AwsError {
    use serde_json::error::Category;
    let text = e.to_string();
    if let Some(err) = blob_error(&text) {
        return err;
    }
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => AwsError {
            code: super::error::codes::SERIALIZATION,
            message: String::new(),
            status: 400,
        },
        Category::Data => AwsError::serialization(coral_type_message(&text)),
    }
}

/// The SerializationException for bad base64, if `text` carries one.
fn blob_error(text: &str) -> Option<AwsError> {
    let (_, rest) = text.split_once(BASE64_ERROR)?;
    let message = match rest.rfind(" at line ") {
        Some(i) => &rest[..i],
        None => rest,
    };
    Some(AwsError::serialization(message.to_string()))
}

/// Turns serde's "invalid type: string \"x\", expected i64" into the message AWS's (Coral's)
/// JSON reader gives for the same mismatch.
fn coral_type_message(text: &str) -> String {
    let detail = text.split(" at line").next().unwrap_or(text);
    let Some(rest) = detail.strip_prefix("invalid type: ") else {
        return detail.to_string();
    };
    let (got, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
    let got_kind = got.split_whitespace().next().unwrap_or("");
    let target = if expected.starts_with("a string") {
        "an String"
    } else if expected.starts_with('i') || expected.starts_with('u') {
        "an Integer"
    } else if expected.starts_with("a boolean") {
        "an Boolean"
    } else if expected.starts_with("a base64") {
        "a Blob"
    } else if expected.starts_with("a timestamp") {
        "milliseconds since epoch"
    } else if expected.starts_with("a sequence") {
        return match got_kind {
            "map" => "Start of structure or map found where not expected.".into(),
            _ => "Expected list or null".into(),
        };
    } else if expected.starts_with("a map") {
        return match got_kind {
            "sequence" => "Start of list found where not expected".into(),
            _ => "Expected map or null".into(),
        };
    } else if expected.starts_with("struct") {
        return match got_kind {
            "sequence" => "Start of list found where not expected".into(),
            _ => "Expected null".into(),
        };
    } else {
        return detail.to_string();
    };
    match got_kind {
        "sequence" => "Start of list found where not expected".into(),
        "map" => "Start of structure or map found where not expected.".into(),
        "boolean" => format!("class java.lang.Boolean can not be converted to {target}"),
        "integer" | "floating" => format!(
            "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to {target}"
        ),
        "string" if target == "an Boolean" => {
            let value = got.trim_start_matches("string ").trim_matches('"');
            format!("'{}' can not be converted to an Boolean", value.to_uppercase())
        }
        "string" => format!("class java.lang.String can not be converted to {target}"),
        _ => detail.to_string(),
    }
}

/// Encodes a response (or error) body.
pub fn encode<T: Serialize>(protocol: Protocol, value: &T) -> Bytes {
    match protocol {
        Protocol::Json => Bytes::from(serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec())),
        Protocol::Cbor => {
            let mut out = Vec::with_capacity(128);
            if ciborium::into_writer(value, &mut out).is_err() {
                out = vec![0xa0];
            }
            Bytes::from(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[serde(rename_all = "PascalCase")]
    struct Req {
        stream_name: Option<String>,
    }

    #[test]
    fn empty_body_is_an_empty_structure() {
        let r: Req = decode(Protocol::Json, b"").unwrap();
        assert!(r.stream_name.is_none());
        let r: Req = decode(Protocol::Cbor, b"").unwrap();
        assert!(r.stream_name.is_none());
    }

    #[test]
    fn malformed_and_mistyped_bodies_are_serialization_errors() {
        let e = decode::<Req>(Protocol::Json, b"{not json").unwrap_err();
        assert_eq!(e.code, "SerializationException");
        let e = decode::<Req>(Protocol::Json, br#"{"StreamName": 5}"#).unwrap_err();
        assert_eq!(e.code, "SerializationException");
        assert_eq!(
            e.message,
            "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an String"
        );
        let e = decode::<Req>(Protocol::Json, br#"{"StreamName": true}"#).unwrap_err();
        assert_eq!(
            e.message,
            "class java.lang.Boolean can not be converted to an String"
        );
    }

    #[test]
    fn content_types_select_the_protocol() {
        assert_eq!(
            Protocol::from_content_type("application/x-amz-json-1.1"),
            Some(Protocol::Json)
        );
        assert_eq!(
            Protocol::from_content_type("application/x-amz-cbor-1.1; charset=utf-8"),
            Some(Protocol::Cbor)
        );
        assert_eq!(Protocol::from_content_type("text/plain"), None);
    }
}
