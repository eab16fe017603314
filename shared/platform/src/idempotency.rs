//! `request_id` idempotency: the first response is stored with a hash of the request in
//! the same transaction as the write; a retry returns it, a different request under the
//! same id is refused.
//!
//! A request id belongs to its caller (as Stripe scopes keys per account): the key is
//! `(method, caller, request_id)`, where the caller is everything the token says about who
//! is calling. The same id from another caller is another key: it is neither answered with
//! someone else's result nor refused.

use sea_orm::{ConnectionTrait, DbErr};
use sha2::{Digest, Sha256};

use crate::auth::Principal;
use crate::ctx::CallContext;
use crate::db::{WriteTxn, db_error, is_unique_violation};
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

/// Who is calling, as the key's owner: a hash of every identifying claim, so that two
/// institutions (or two officers of different authorities) never share a key, and no
/// subject is stored in clear.
pub fn caller_scope(p: &Principal) -> String {
    let parts = [
        p.role.as_str(),
        p.subject.as_str(),
        p.institution.as_deref().unwrap_or(""),
        p.member.as_deref().unwrap_or(""),
        p.service.as_deref().unwrap_or(""),
        p.authority.as_deref().unwrap_or(""),
        p.on_behalf_of.as_deref().unwrap_or(""),
    ];
    let mut h = Sha256::new();
    for part in parts {
        // Length-prefixed, so that no two different claim sets hash alike.
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// A hash of the request as the caller sent it, bound to the caller.
pub fn request_hash<M: prost::Message>(caller: &str, req: &M) -> String {
    let mut h = Sha256::new();
    h.update(caller.as_bytes());
    h.update([0u8]);
    h.update(req.encode_to_vec());
    hex::encode(h.finalize())
}

/// The idempotency key of one create: its method, its caller and the caller's
/// `request_id`, with a hash of the request to tell a retry from a reuse.
#[derive(Debug, Clone)]
pub struct Key {
    method: String,
    caller: String,
    request_id: String,
    hash: String,
}

impl Key {
    /// The key of `req`, or `None` when it carries no `request_id`. The id must have been
    /// checked with [`validate_request_id`].
    pub fn of<M: prost::Message>(ctx: &CallContext, request_id: &str, req: &M) -> Option<Self> {
        if request_id.is_empty() {
            return None;
        }
        let caller = caller_scope(&ctx.principal);
        Some(Self {
            method: ctx.method.clone(),
            hash: request_hash(&caller, req),
            caller,
            request_id: request_id.to_owned(),
        })
    }

    /// The key as one string: method, caller and request id, each length-prefixed.
    pub(crate) fn id(&self) -> String {
        [&self.method, &self.caller, &self.request_id]
            .map(|part| format!("{}:{part}", part.len()))
            .concat()
    }

    /// The stored response, if this caller sent this request before. Works on the write
    /// transaction (authoritative) or, as an early answer, on a read connection.
    pub async fn lookup<R: prost::Message + Default>(
        &self,
        conn: &impl ConnectionTrait,
    ) -> Result<Option<R>, ApiError> {
        let row = conn
            .query_one_raw(sea_orm::Statement::from_sql_and_values(
                conn.get_database_backend(),
                "SELECT request_hash, response FROM idempotency \
                 WHERE method = $1 AND caller = $2 AND request_id = $3",
                [
                    self.method.as_str().into(),
                    self.caller.as_str().into(),
                    self.request_id.as_str().into(),
                ],
            ))
            .await
            .map_err(db_error)?;
        let Some(row) = row else { return Ok(None) };
        let stored_hash: String = row.try_get("", "request_hash").map_err(db_error)?;
        if stored_hash != self.hash {
            return Err(ApiError::invalid(
                "request_id",
                "you already used it for a different request; use a new request_id",
            ));
        }
        let bytes: Vec<u8> = row.try_get("", "response").map_err(db_error)?;
        R::decode(bytes.as_slice())
            .map(Some)
            .map_err(ApiError::internal)
    }

    /// Stores the response of the first request under this key, in the write's own
    /// transaction, deferred (see [`WriteTxn::defer`]): the key taken meanwhile by a
    /// concurrent writer (of another replica) fails the commit with `ABORTED`.
    pub async fn record<R: prost::Message>(
        &self,
        txn: &WriteTxn,
        response: &R,
    ) -> Result<(), ApiError> {
        txn.defer(sea_orm::Statement::from_sql_and_values(
            txn.get_database_backend(),
            "INSERT INTO idempotency \
             (method, caller, request_id, request_hash, response, create_us) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            [
                self.method.as_str().into(),
                self.caller.as_str().into(),
                self.request_id.as_str().into(),
                self.hash.as_str().into(),
                response.encode_to_vec().into(),
                crate::db::now_micros().into(),
            ],
        ))
        .await
        .map_err(commit_error)?;
        txn.note_request(self.id());
        Ok(())
    }
}

/// What a write whose idempotency INSERT may have run (deferred, at the latest on the
/// commit) answers for database error `e`: a clash of the idempotency key is a concurrent
/// copy of the request (`ABORTED`, whose retry is answered); any other key clash is a
/// bug, not the caller's to retry.
pub(crate) fn commit_error(e: DbErr) -> ApiError {
    if is_unique_violation(&e) && e.to_string().contains("idempotency") {
        ApiError::Aborted("the same request_id is being processed concurrently".into())
    } else {
        db_error(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    #[test]
    fn request_ids() {
        assert!(validate_request_id("0193b1c2-aaaa-7bbb-8ccc-123456789abc", "request_id").is_ok());
        assert!(validate_request_id("has space", "request_id").is_err());
        assert!(validate_request_id(&"x".repeat(101), "request_id").is_err());
        assert!(validate_request_id("شناسه", "request_id").is_err());
    }

    fn principal(role: Role, subject: &str, institution: Option<&str>) -> Principal {
        Principal {
            subject: subject.into(),
            role,
            institution: institution.map(str::to_owned),
            member: None,
            service: None,
            authority: None,
            on_behalf_of: None,
        }
    }

    #[test]
    fn callers_differ_by_every_claim() {
        let a = principal(Role::Institution, "agent", Some("i1"));
        let b = principal(Role::Institution, "agent", Some("i2"));
        let c = principal(Role::Admin, "agent", None);
        let mut d = principal(Role::JudicialOfficer, "clerk", None);
        let e = d.clone();
        d.authority = Some("court-1".into());
        let scopes = [&a, &b, &c, &d, &e].map(caller_scope);
        for (i, x) in scopes.iter().enumerate() {
            for y in &scopes[i + 1..] {
                assert_ne!(x, y);
            }
        }
        assert_eq!(caller_scope(&a), caller_scope(&a.clone()));
        // Length prefixes: moving a character from one claim to the next is another caller.
        let f = principal(Role::Institution, "agent1", Some(""));
        let g = principal(Role::Institution, "agent", Some("1"));
        assert_ne!(caller_scope(&f), caller_scope(&g));
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
