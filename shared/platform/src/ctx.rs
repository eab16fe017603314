//! What a handler knows about the call it serves.

use std::time::Instant;

use crate::auth::{Principal, Role};
use crate::error::ApiError;

/// The full gRPC method of the call (`/pkg.Service/Method`), put in the request's
/// extensions by the server stack.
#[derive(Debug, Clone)]
pub struct RpcMethod(pub String);

/// When the caller stops waiting: the earlier of its `grpc-timeout` and the server's own
/// per-call limit.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(pub Instant);

/// The caller, the method, the trace and the deadline of one call.
#[derive(Debug, Clone)]
pub struct CallContext {
    pub principal: Principal,
    pub method: String,
    pub trace_id: String,
    pub deadline: Option<Instant>,
}

impl CallContext {
    pub fn from_request<T>(req: &tonic::Request<T>) -> Result<Self, ApiError> {
        let principal = req
            .extensions()
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| ApiError::Unauthenticated("no credentials".into()))?;
        Ok(Self {
            principal,
            method: req
                .extensions()
                .get::<RpcMethod>()
                .map(|m| m.0.clone())
                .unwrap_or_default(),
            trace_id: crate::telemetry::current_trace_id(),
            deadline: req.extensions().get::<Deadline>().map(|d| d.0),
        })
    }

    /// Refuses with `PERMISSION_DENIED` unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<&Principal, ApiError> {
        self.principal.require(roles)?;
        Ok(&self.principal)
    }

    pub fn role(&self) -> Role {
        self.principal.role
    }

    /// The audit record of a change this call makes to `resource`.
    pub fn audit(&self, resource: impl Into<String>) -> crate::audit::AuditEntry {
        crate::audit::AuditEntry {
            actor: self.principal.subject.clone(),
            role: self.principal.role.to_string(),
            method: self.method.clone(),
            resource: resource.into(),
            trace_id: self.trace_id.clone(),
            on_behalf_of: self.principal.on_behalf_of.clone().unwrap_or_default(),
        }
    }

    /// A context for work the service does by itself (expiry sweeps, event consumers).
    pub fn system(method: &str) -> Self {
        Self {
            principal: Principal {
                subject: "system".into(),
                role: Role::Service,
                institution: None,
                member: None,
                service: Some("system".into()),
                authority: None,
                on_behalf_of: None,
            },
            method: method.into(),
            trace_id: crate::telemetry::current_trace_id(),
            deadline: None,
        }
    }
}
