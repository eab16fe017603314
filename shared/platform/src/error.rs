//! One mapping from the suite's errors to `tonic::Status`, with the rich details of
//! `platform.md`: BadRequest, ResourceInfo, ErrorInfo, RequestInfo (the trace id) and a
//! Persian LocalizedMessage on every error.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of every error the suite raises.
pub const ERROR_DOMAIN: &str = "mosharekat.judiciary.ir";

/// One bad field of a request: its path (`institution.national_id`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

/// An error a handler returns. Everything a caller may see is here; the cause of an
/// `Internal` error is logged, never sent.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid request: {}", describe(.0))]
    InvalidArgument(Vec<FieldViolation>),
    #[error("{resource_type} {name} not found")]
    NotFound {
        resource_type: &'static str,
        name: String,
    },
    #[error("{resource_type} {name} already exists")]
    AlreadyExists {
        resource_type: &'static str,
        name: String,
    },
    /// A business rule refuses: `reason` is stable (e.g. `LICENCE_SUSPENDED`).
    #[error("{message}")]
    FailedPrecondition {
        reason: String,
        message: String,
        persian: String,
        metadata: HashMap<String, String>,
    },
    #[error("{0}")]
    Aborted(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    ResourceExhausted(String),
    #[error("deadline exceeded: {0}")]
    DeadlineExceeded(String),
    /// The database cannot do this now; the fault says why, without SQL or values.
    #[error("{}", .0.message())]
    Storage(StorageFault),
    /// A bug or an unexpected fault: logged with its cause, opaque to the caller.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// Why the database could not take a call: each has a stable `ErrorInfo` reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageFault {
    /// No room left on the database's disk.
    Full,
    /// The database's files cannot be written (read-only file, mount or server).
    ReadOnly,
    /// The disk or the database server reported an I/O error or corruption.
    Failing,
    /// The database is locked by another writer longer than the busy timeout.
    Busy,
    /// The database cannot be reached (connection refused, lost, pool exhausted).
    Unreachable,
}

impl StorageFault {
    pub fn reason(self) -> &'static str {
        match self {
            Self::Full => "STORAGE_FULL",
            Self::ReadOnly => "STORAGE_READ_ONLY",
            Self::Failing => "STORAGE_FAILING",
            Self::Busy => "DATABASE_BUSY",
            Self::Unreachable => "DATABASE_UNAVAILABLE",
        }
    }

    /// A full disk is a resource running out (gRPC's own example of RESOURCE_EXHAUSTED);
    /// the rest are conditions that pass, so retryable.
    pub fn code(self) -> Code {
        match self {
            Self::Full => Code::ResourceExhausted,
            _ => Code::Unavailable,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Self::Full => "the database's disk is full; nothing was written",
            Self::ReadOnly => "the database cannot be written now; nothing was written",
            Self::Failing => "the database's storage is failing; nothing was written",
            Self::Busy => "the database is busy",
            Self::Unreachable => "the database is unavailable",
        }
    }

    fn persian(self) -> &'static str {
        match self {
            Self::Full => "فضای ذخیره‌سازی سامانه پر است؛ چیزی ثبت نشد. کمی بعد دوباره تلاش کنید.",
            Self::ReadOnly => {
                "پایگاه داده اکنون نوشتنی نیست؛ چیزی ثبت نشد. کمی بعد دوباره تلاش کنید."
            }
            Self::Failing => "ذخیره‌سازی سامانه دچار خطاست؛ چیزی ثبت نشد. کمی بعد دوباره تلاش کنید.",
            Self::Busy => "پایگاه داده مشغول است؛ کمی بعد دوباره تلاش کنید.",
            Self::Unreachable => "پایگاه داده در دسترس نیست؛ کمی بعد دوباره تلاش کنید.",
        }
    }

    /// Whether the fault is of the storage itself (as opposed to reaching it): health
    /// then follows whether a write can be made, not only whether a read answers.
    pub fn is_of_storage(self) -> bool {
        matches!(self, Self::Full | Self::ReadOnly | Self::Failing)
    }
}

fn describe(v: &[FieldViolation]) -> String {
    v.iter()
        .map(|f| format!("{}: {}", f.field, f.description))
        .collect::<Vec<_>>()
        .join("; ")
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![FieldViolation {
            field: field.into(),
            description: description.into(),
        }])
    }

    pub fn not_found(resource_type: &'static str, name: impl Into<String>) -> Self {
        Self::NotFound {
            resource_type,
            name: name.into(),
        }
    }

    pub fn already_exists(resource_type: &'static str, name: impl Into<String>) -> Self {
        Self::AlreadyExists {
            resource_type,
            name: name.into(),
        }
    }

    pub fn precondition(
        reason: impl Into<String>,
        message: impl Into<String>,
        persian: impl Into<String>,
    ) -> Self {
        Self::FailedPrecondition {
            reason: reason.into(),
            message: message.into(),
            persian: persian.into(),
            metadata: HashMap::new(),
        }
    }

    /// A resource changed by someone else since the caller read it.
    pub fn stale(name: &str) -> Self {
        Self::Aborted(format!(
            "{name} was changed by someone else; read it again and retry"
        ))
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        Self::Internal(e.into())
    }

    pub fn code(&self) -> Code {
        match self {
            Self::InvalidArgument(_) => Code::InvalidArgument,
            Self::NotFound { .. } => Code::NotFound,
            Self::AlreadyExists { .. } => Code::AlreadyExists,
            Self::FailedPrecondition { .. } => Code::FailedPrecondition,
            Self::Aborted(_) => Code::Aborted,
            Self::Unauthenticated(_) => Code::Unauthenticated,
            Self::PermissionDenied(_) => Code::PermissionDenied,
            Self::Unavailable(_) => Code::Unavailable,
            Self::ResourceExhausted(_) => Code::ResourceExhausted,
            Self::DeadlineExceeded(_) => Code::DeadlineExceeded,
            Self::Storage(f) => f.code(),
            Self::Internal(_) => Code::Internal,
        }
    }

    fn persian(&self) -> String {
        match self {
            Self::InvalidArgument(v) => format!(
                "درخواست نامعتبر است؛ این بخش‌ها را بررسی کنید: {}",
                v.iter()
                    .map(|f| f.field.as_str())
                    .collect::<Vec<_>>()
                    .join("، ")
            ),
            Self::NotFound { .. } => "مورد درخواستی پیدا نشد.".into(),
            Self::AlreadyExists { .. } => "این مورد پیش‌تر ثبت شده است.".into(),
            Self::FailedPrecondition { persian, .. } => persian.clone(),
            Self::Aborted(_) => {
                "این مورد هم‌زمان تغییر کرده است؛ آن را دوباره بخوانید و دوباره تلاش کنید.".into()
            }
            Self::Unauthenticated(_) => "هویت شما احراز نشد؛ دوباره وارد شوید.".into(),
            Self::PermissionDenied(_) => "شما اجازهٔ این کار را ندارید.".into(),
            Self::Unavailable(_) => "سامانه موقتاً در دسترس نیست؛ کمی بعد دوباره تلاش کنید.".into(),
            Self::ResourceExhausted(_) => "سامانه پربار است یا درخواست بیش از حد بزرگ است.".into(),
            Self::DeadlineExceeded(_) => "مهلت پاسخ‌گویی به پایان رسید.".into(),
            Self::Storage(f) => f.persian().into(),
            Self::Internal(_) => "خطای داخلی رخ داد؛ با پشتیبانی تماس بگیرید.".into(),
        }
    }

    /// The status a caller receives; `trace_id` goes into `RequestInfo.request_id`.
    pub fn to_status(&self, trace_id: &str) -> Status {
        let mut details = ErrorDetails::new();
        match self {
            Self::InvalidArgument(v) => {
                for f in v {
                    details.add_bad_request_violation(&f.field, &f.description);
                }
            }
            Self::NotFound {
                resource_type,
                name,
            }
            | Self::AlreadyExists {
                resource_type,
                name,
            } => {
                details.set_resource_info(*resource_type, name.as_str(), "", "");
            }
            Self::FailedPrecondition {
                reason, metadata, ..
            } => {
                details.set_error_info(reason.as_str(), ERROR_DOMAIN, metadata.clone());
            }
            Self::Storage(f) => {
                details.set_error_info(f.reason(), ERROR_DOMAIN, HashMap::new());
            }
            _ => {}
        }
        details.set_request_info(trace_id, "");
        details.set_localized_message("fa-IR", self.persian());
        if let Self::Internal(e) = self {
            tracing::error!(error = format!("{e:#}"), trace_id, "internal error");
        }
        Status::with_error_details(self.code(), self.to_string(), details)
    }
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Self {
        let trace_id = crate::telemetry::current_trace_id();
        e.to_status(&trace_id)
    }
}

/// Collects the violations of a whole request, so that a caller learns every bad field at
/// once rather than one per attempt.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
    }

    /// Keeps the value when `r` is `Ok`; records the violation and returns `None` otherwise.
    pub fn check<T, E: std::fmt::Display>(
        &mut self,
        field: impl Into<String>,
        r: Result<T, E>,
    ) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.add(field, e.to_string());
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_result(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::InvalidArgument(self.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_names_every_field_and_carries_trace_id() {
        let mut v = Violations::new();
        v.add("institution.national_id", "the check digit does not match");
        v.add("institution.display_name", "must not be empty");
        let status = v.into_result().unwrap_err().to_status("abc123");
        assert_eq!(status.code(), Code::InvalidArgument);
        let d = status.get_error_details();
        let br = d.bad_request().expect("bad request");
        let fields: Vec<_> = br
            .field_violations
            .iter()
            .map(|f| f.field.as_str())
            .collect();
        assert_eq!(
            fields,
            ["institution.national_id", "institution.display_name"]
        );
        assert_eq!(d.request_info().unwrap().request_id, "abc123");
        assert_eq!(d.localized_message().unwrap().locale, "fa-IR");
    }

    #[test]
    fn precondition_carries_reason() {
        let s = ApiError::precondition("LICENCE_SUSPENDED", "suspended", "تعلیق").to_status("t");
        assert_eq!(s.code(), Code::FailedPrecondition);
        assert_eq!(
            s.get_error_details().error_info().unwrap().reason,
            "LICENCE_SUSPENDED"
        );
    }

    #[test]
    fn storage_faults_carry_their_reason() {
        for (f, code, reason) in [
            (StorageFault::Full, Code::ResourceExhausted, "STORAGE_FULL"),
            (
                StorageFault::ReadOnly,
                Code::Unavailable,
                "STORAGE_READ_ONLY",
            ),
            (StorageFault::Busy, Code::Unavailable, "DATABASE_BUSY"),
        ] {
            let s = ApiError::Storage(f).to_status("t");
            assert_eq!(s.code(), code);
            let d = s.get_error_details();
            assert_eq!(d.error_info().unwrap().reason, reason);
            assert_eq!(d.localized_message().unwrap().locale, "fa-IR");
        }
    }

    #[test]
    fn internal_is_opaque() {
        let s = ApiError::internal(anyhow::anyhow!("SELECT * FROM secret failed")).to_status("t");
        assert_eq!(s.code(), Code::Internal);
        assert!(!s.message().contains("SELECT"));
    }
}
