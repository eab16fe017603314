//! The audit log: every change, in the same transaction as the change, chained by
//! SHA-256 so that an altered or removed record is found; and the `AuditService` that
//! every service serves over its own log.
//!
//! # The chain's canonical form
//!
//! A record's `hash` is the lowercase hex SHA-256 of a length-prefixed field list, never of
//! an API message: for each of these nine fields, in this order, the 8-byte big-endian
//! length of its UTF-8 bytes, then those bytes:
//!
//! 1. `previous_hash`: the hash of the record before (lowercase hex), empty for the first;
//! 2. `seq`, 3. `time_us` (microseconds since the Unix epoch): in decimal ASCII, `-` for a
//!    negative number, no leading zeros;
//! 4. `actor`, 5. `role`, 6. `method`, 7. `resource`, 8. `trace_id`, 9. `on_behalf_of`:
//!    as stored (empty when absent).
//!
//! The prefixes keep any two different records from serialising alike. The test
//! `golden_vectors` pins two chained records; if it fails, the form has changed and every
//! chain written before would stop verifying.

use sea_orm::{ConnectionTrait, FromQueryResult};
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};

use mosharekat_api::common::v1 as pb;
use pb::audit_service_server::{AuditService, AuditServiceServer};

use crate::auth::Role;
use crate::ctx::CallContext;
use crate::db::{Db, WriteTxn, db_error, to_timestamp};
use crate::error::ApiError;
use crate::pagination;

/// Who changed what, as a handler describes it.
#[derive(Debug, Clone, Default)]
pub struct AuditEntry {
    pub actor: String,
    pub role: String,
    pub method: String,
    pub resource: String,
    pub trace_id: String,
    pub on_behalf_of: String,
}

#[derive(Debug, Clone, FromQueryResult)]
struct Row {
    seq: i64,
    time_us: i64,
    actor: String,
    role: String,
    method: String,
    resource: String,
    trace_id: String,
    on_behalf_of: String,
    previous_hash: String,
    hash: String,
}

fn chain_hash(previous_hash: &str, seq: i64, time_us: i64, e: &AuditEntry) -> String {
    let mut h = Sha256::new();
    // Length-prefixed fields: no two different records serialise alike.
    for part in [
        previous_hash,
        &seq.to_string(),
        &time_us.to_string(),
        &e.actor,
        &e.role,
        &e.method,
        &e.resource,
        &e.trace_id,
        &e.on_behalf_of,
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

impl Row {
    fn entry(&self) -> AuditEntry {
        AuditEntry {
            actor: self.actor.clone(),
            role: self.role.clone(),
            method: self.method.clone(),
            resource: self.resource.clone(),
            trace_id: self.trace_id.clone(),
            on_behalf_of: self.on_behalf_of.clone(),
        }
    }

    fn into_pb(self) -> pb::AuditRecord {
        pb::AuditRecord {
            sequence: self.seq,
            time: Some(to_timestamp(self.time_us)),
            actor: self.actor,
            role: self.role,
            method: self.method,
            resource: self.resource,
            trace_id: self.trace_id,
            on_behalf_of: self.on_behalf_of,
            previous_hash: self.previous_hash,
            hash: self.hash,
        }
    }
}

/// Appends `entry` to the log inside `txn`, a write transaction (so appends are
/// serialised), at the time of the database's clock. The chain's head is read from the
/// log once per write batch, then kept by the batch. The INSERT is deferred (see
/// [`WriteTxn::defer`]): a refusal of it fails the write's commit.
pub async fn append(txn: &WriteTxn, entry: &AuditEntry) -> Result<i64, ApiError> {
    let backend = txn.get_database_backend();
    let (prev_seq, prev_hash) = match txn.audit_head() {
        Some(head) => head,
        None => {
            let last = txn
                .query_one_raw(sea_orm::Statement::from_string(
                    backend,
                    "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
                ))
                .await
                .map_err(db_error)?;
            match last {
                Some(r) => (
                    r.try_get::<i64>("", "seq").map_err(db_error)?,
                    r.try_get::<String>("", "hash").map_err(db_error)?,
                ),
                None => (0, String::new()),
            }
        }
    };
    let seq = prev_seq + 1;
    let time_us = txn.now_micros();
    let hash = chain_hash(&prev_hash, seq, time_us, entry);
    // Deferred: the record is the last statement of nearly every write.
    txn.defer(sea_orm::Statement::from_sql_and_values(
        backend,
        "INSERT INTO audit_log (seq, time_us, actor, role, method, resource, trace_id, \
         on_behalf_of, previous_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        [
            seq.into(),
            time_us.into(),
            entry.actor.clone().into(),
            entry.role.clone().into(),
            entry.method.clone().into(),
            entry.resource.clone().into(),
            entry.trace_id.clone().into(),
            entry.on_behalf_of.clone().into(),
            prev_hash.into(),
            hash.clone().into(),
        ],
    ))
    .await
    .map_err(db_error)?;
    txn.set_audit_head((seq, hash));
    Ok(seq)
}

/// The result of checking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub checked: i64,
    /// The first record that does not match, and why.
    pub first_broken: Option<(i64, String)>,
}

/// Recomputes the chain from the first record, in batches.
pub async fn verify(db: &Db) -> Result<Verification, ApiError> {
    const BATCH: i64 = 1000;
    let mut expected_seq = 1i64;
    let mut prev_hash = String::new();
    let mut checked = 0i64;
    loop {
        let rows = Row::find_by_statement(db.stmt(
            "SELECT seq, time_us, actor, role, method, resource, trace_id, on_behalf_of, \
             previous_hash, hash FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2",
            [expected_seq.into(), BATCH.into()],
        ))
        .all(db.conn())
        .await
        .map_err(db_error)?;
        if rows.is_empty() {
            return Ok(Verification {
                checked,
                first_broken: None,
            });
        }
        let n = rows.len() as i64;
        for r in rows {
            let problem = if r.seq != expected_seq {
                Some(format!("record {expected_seq} is missing"))
            } else if r.previous_hash != prev_hash {
                Some("previous_hash does not match the record before".into())
            } else if chain_hash(&prev_hash, r.seq, r.time_us, &r.entry()) != r.hash {
                Some("the record's content does not match its hash".into())
            } else {
                None
            };
            if let Some(p) = problem {
                return Ok(Verification {
                    checked,
                    first_broken: Some((expected_seq, p)),
                });
            }
            checked += 1;
            expected_seq += 1;
            prev_hash = r.hash;
        }
        if n < BATCH {
            return Ok(Verification {
                checked,
                first_broken: None,
            });
        }
    }
}

/// `mosharekat.common.v1.AuditService` over one service's log: ADMIN and AUDITOR only.
#[derive(Debug, Clone)]
pub struct AuditApi {
    db: Db,
}

impl AuditApi {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub fn into_server(self) -> AuditServiceServer<Self> {
        AuditServiceServer::new(self)
    }
}

const AUDIT_READERS: &[Role] = &[Role::Admin, Role::Auditor];

#[tonic::async_trait]
impl AuditService for AuditApi {
    #[tracing::instrument(skip_all)]
    async fn list_audit_records(
        &self,
        request: Request<pb::ListAuditRecordsRequest>,
    ) -> Result<Response<pb::ListAuditRecordsResponse>, Status> {
        let ctx = CallContext::from_request(&request)?;
        ctx.require(AUDIT_READERS)?;
        let req = request.into_inner();
        let size = pagination::page_size(req.page_size, "page_size")?;
        let filters = pagination::fingerprint(&["audit", &req.resource]);
        let after: i64 = pagination::decode(&req.page_token, &filters, "page_token")?.unwrap_or(0);
        let limit = size as i64 + 1;
        let mut rows = if req.resource.is_empty() {
            Row::find_by_statement(self.db.stmt(
                "SELECT * FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
                [after.into(), limit.into()],
            ))
            .all(self.db.conn())
            .await
        } else {
            Row::find_by_statement(self.db.stmt(
                "SELECT * FROM audit_log WHERE resource = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                [req.resource.clone().into(), after.into(), limit.into()],
            ))
            .all(self.db.conn())
            .await
        }
        .map_err(db_error)?;
        let next_page_token = pagination::next_page(&mut rows, size, &filters, |r| r.seq);
        Ok(Response::new(pb::ListAuditRecordsResponse {
            records: rows.into_iter().map(Row::into_pb).collect(),
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn verify_audit_chain(
        &self,
        request: Request<pb::VerifyAuditChainRequest>,
    ) -> Result<Response<pb::VerifyAuditChainResponse>, Status> {
        let ctx = CallContext::from_request(&request)?;
        ctx.require(AUDIT_READERS)?;
        let v = verify(&self.db).await?;
        let (first_broken_sequence, problem) = v.first_broken.unwrap_or((0, String::new()));
        Ok(Response::new(pb::VerifyAuditChainResponse {
            intact: first_broken_sequence == 0,
            records_checked: v.checked,
            first_broken_sequence,
            problem,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_covers_every_field() {
        let e = AuditEntry {
            actor: "a".into(),
            role: "ADMIN".into(),
            method: "/m".into(),
            resource: "institutions/1".into(),
            trace_id: "t".into(),
            on_behalf_of: String::new(),
        };
        let base = chain_hash("p", 1, 2, &e);
        assert_eq!(base, chain_hash("p", 1, 2, &e), "stable");
        let mut changed = e.clone();
        changed.resource = "institutions/2".into();
        assert_ne!(base, chain_hash("p", 1, 2, &changed));
        assert_ne!(base, chain_hash("q", 1, 2, &e));
        assert_ne!(base, chain_hash("p", 2, 2, &e));
        // Moving a character between fields changes the hash too.
        let mut shifted = e.clone();
        shifted.actor = "aA".into();
        shifted.role = "DMIN".into();
        assert_ne!(base, chain_hash("p", 1, 2, &shifted));
    }

    /// The form of the module's comment, pinned (and computed independently of this code).
    #[test]
    fn golden_vectors() {
        let first = AuditEntry {
            actor: "secretary-1".into(),
            role: "SECRETARY".into(),
            method: "/mosharekat.meeting.v1.MeetingService/ApproveMinutes".into(),
            resource: "working-groups/w/meetings/1".into(),
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            on_behalf_of: String::new(),
        };
        let h1 = chain_hash("", 1, 1_764_403_200_000_000, &first);
        assert_eq!(
            h1,
            "ea04354f225e2a4ef1aa28b8274c4d5f833aff0994e645bc4d2efb5afcb034fd"
        );
        let second = AuditEntry {
            actor: "رضا".into(),
            role: "ADMIN".into(),
            method: "/m".into(),
            resource: "institutions/1".into(),
            trace_id: "t".into(),
            on_behalf_of: "service:referral".into(),
        };
        assert_eq!(
            chain_hash(&h1, 2, 1_764_403_200_000_001, &second),
            "b696e91079acba2f0ebb1d1eb4f533e83e49f9b969135ec7e3271fa3ef16e3d1"
        );
    }
}
