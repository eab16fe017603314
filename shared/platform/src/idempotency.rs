//! `request_id` idempotency: the first response is stored with a hash of the request in
//! the same transaction as the write; a retry returns it, a different request under the
//! same id is refused.

use sea_orm::{ConnectionTrait, DatabaseTransaction};
use sha2::{Digest, Sha256};

use crate::db::{db_error, is_unique_violation};
use crate::error::ApiError;

/// Checks a request id's form: 1 to 100 printable ASCII characters (UUIDs fit).
pub fn validate_request_id(id: &str, field: &str) -> Result<(), ApiError> {
    if id.len() > 100 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid(
            field,
            "must be 1 to 100 printable ASCII characters",
        ));
    }
    Ok(())
}

/// A hash of the request as the caller sent it, bound to the caller.
pub fn request_hash<M: prost::Message>(caller: &str, req: &M) -> String {
    let mut h = Sha256::new();
    h.update(caller.as_bytes());
    h.update([0u8]);
    h.update(req.encode_to_vec());
    hex::encode(h.finalize())
}

/// The stored response for `(method, request_id)`, if the request was seen before.
pub async fn lookup<R: prost::Message + Default>(
    txn: &DatabaseTransaction,
    method: &str,
    request_id: &str,
    hash: &str,
    field: &str,
) -> Result<Option<R>, ApiError> {
    let row = txn
        .query_one_raw(sea_orm::Statement::from_sql_and_values(
            txn.get_database_backend(),
            "SELECT request_hash, response FROM idempotency WHERE method = $1 AND request_id = $2",
            [method.into(), request_id.into()],
        ))
        .await
        .map_err(db_error)?;
    let Some(row) = row else { return Ok(None) };
    let stored_hash: String = row.try_get("", "request_hash").map_err(db_error)?;
    if stored_hash != hash {
        return Err(ApiError::invalid(
            field,
            "was already used for a different request; use a new request_id",
        ));
    }
    let bytes: Vec<u8> = row.try_get("", "response").map_err(db_error)?;
    R::decode(bytes.as_slice())
        .map(Some)
        .map_err(ApiError::internal)
}

/// Stores the response of the first request with this id.
pub async fn record<R: prost::Message>(
    txn: &DatabaseTransaction,
    method: &str,
    request_id: &str,
    hash: &str,
    response: &R,
) -> Result<(), ApiError> {
    txn.execute_raw(sea_orm::Statement::from_sql_and_values(
        txn.get_database_backend(),
        "INSERT INTO idempotency (method, request_id, request_hash, response, create_us) \
         VALUES ($1, $2, $3, $4, $5)",
        [
            method.into(),
            request_id.into(),
            hash.into(),
            response.encode_to_vec().into(),
            crate::db::now_micros().into(),
        ],
    ))
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            ApiError::Aborted("the same request_id is being processed concurrently".into())
        } else {
            db_error(e)
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids() {
        assert!(validate_request_id("0193b1c2-aaaa-7bbb-8ccc-123456789abc", "request_id").is_ok());
        assert!(validate_request_id("has space", "request_id").is_err());
        assert!(validate_request_id(&"x".repeat(101), "request_id").is_err());
        assert!(validate_request_id("شناسه", "request_id").is_err());
    }

    #[test]
    fn hash_binds_caller_and_request() {
        let a = request_hash(
            "alice",
            &prost_types::Timestamp {
                seconds: 1,
                nanos: 0,
            },
        );
        let b = request_hash(
            "bob",
            &prost_types::Timestamp {
                seconds: 1,
                nanos: 0,
            },
        );
        let c = request_hash(
            "alice",
            &prost_types::Timestamp {
                seconds: 2,
                nanos: 0,
            },
        );
        assert_ne!(a, b);
        assert_ne!(a, c);
    }
}
