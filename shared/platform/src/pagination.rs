//! Keyset pagination: a page token is the sort key of the last row sent, bound to the
//! filters it was issued for and sealed by a checksum, so a tampered or reused token is
//! refused instead of silently paging through something else.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

pub const DEFAULT_PAGE_SIZE: u64 = 50;
pub const MAX_PAGE_SIZE: u64 = 500;

/// The page size a request asks for: 0 means the default; negative is refused; more than
/// the maximum is capped, as AIP-158 says.
pub fn page_size(requested: i32, field: &str) -> Result<u64, ApiError> {
    match requested {
        n if n < 0 => Err(ApiError::invalid(field, "must not be negative")),
        0 => Ok(DEFAULT_PAGE_SIZE),
        n => Ok((n as u64).min(MAX_PAGE_SIZE)),
    }
}

#[derive(Serialize, Deserialize)]
struct Envelope<K> {
    k: K,
    f: String,
}

fn seal(payload: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"mosharekat/page-token/v1\0");
    h.update(payload.as_bytes());
    hex::encode(&h.finalize()[..12])
}

/// A fingerprint of the filters of a list request: a token only continues the listing it
/// came from.
pub fn fingerprint(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    hex::encode(&h.finalize()[..8])
}

pub fn encode<K: Serialize>(key: &K, filters: &str) -> String {
    let json = serde_json::to_string(&Envelope {
        k: key,
        f: filters.to_owned(),
    })
    .unwrap_or_default();
    let payload = URL_SAFE_NO_PAD.encode(json);
    let sum = seal(&payload);
    format!("{payload}.{sum}")
}

/// Reads a page token; the empty token is the first page (`None`).
pub fn decode<K: DeserializeOwned>(
    token: &str,
    filters: &str,
    field: &str,
) -> Result<Option<K>, ApiError> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || ApiError::invalid(field, "is not a page token this listing issued");
    let (payload, sum) = token.rsplit_once('.').ok_or_else(bad)?;
    if seal(payload) != sum {
        return Err(bad());
    }
    let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| bad())?;
    let env: Envelope<K> = serde_json::from_slice(&json).map_err(|_| bad())?;
    if env.f != filters {
        return Err(ApiError::invalid(
            field,
            "was issued for other filters; start again without a page token",
        ));
    }
    Ok(Some(env.k))
}

/// Trims a page fetched with one row too many (`size + 1`) to `size` rows and returns the
/// token for the next page: the key of its last row, or empty when there is no more.
pub fn next_page<R, K: Serialize>(
    rows: &mut Vec<R>,
    size: u64,
    filters: &str,
    key: impl Fn(&R) -> K,
) -> String {
    if rows.len() as u64 <= size {
        return String::new();
    }
    rows.truncate(size as usize);
    rows.last()
        .map(|r| encode(&key(r), filters))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t = encode(&(12i64, "abc".to_string()), "f1");
        let k: Option<(i64, String)> = decode(&t, "f1", "page_token").unwrap();
        assert_eq!(k, Some((12, "abc".into())));
        assert_eq!(
            decode::<(i64, String)>("", "f1", "page_token").unwrap(),
            None
        );
    }

    #[test]
    fn tampered_tokens_are_refused() {
        let t = encode(&(12i64, "abc".to_string()), "f1");
        let (payload, sum) = t.rsplit_once('.').unwrap();
        // Another key with the old checksum.
        let forged = URL_SAFE_NO_PAD.encode(r#"{"k":[13,"abc"],"f":"f1"}"#);
        for bad in [
            format!("{forged}.{sum}"),
            format!("{payload}.{}", "0".repeat(sum.len())),
            format!("{payload}x.{sum}"),
            payload.to_string(),
            "garbage".into(),
            "😀.😀".into(),
        ] {
            let e = decode::<(i64, String)>(&bad, "f1", "page_token").unwrap_err();
            assert!(
                matches!(e, ApiError::InvalidArgument(ref v) if v[0].field == "page_token"),
                "{bad}"
            );
        }
    }

    #[test]
    fn token_for_other_filters_is_refused() {
        let t = encode(&1i64, "f1");
        assert!(decode::<i64>(&t, "f2", "page_token").is_err());
    }

    #[test]
    fn next_page_trims_the_extra_row() {
        let mut rows = vec![1, 2, 3];
        let t = next_page(&mut rows, 2, "f", |r| *r);
        assert_eq!(rows, [1, 2]);
        assert_eq!(decode::<i32>(&t, "f", "page_token").unwrap(), Some(2));
        let mut rows = vec![1, 2];
        assert_eq!(next_page(&mut rows, 2, "f", |r| *r), "");
        assert_eq!(rows, [1, 2]);
    }

    #[test]
    fn page_sizes() {
        assert_eq!(page_size(0, "page_size").unwrap(), 50);
        assert_eq!(page_size(10, "page_size").unwrap(), 10);
        assert_eq!(page_size(100_000, "page_size").unwrap(), 500);
        assert!(page_size(-1, "page_size").is_err());
    }
}
