//! The public record (domain.md, "The public record"): a deployment switch, off by
//! default, that a service holding public data (the registry, the meeting service) reads.
//!
//! When it is on, the service serves its public gRPC methods, which the edge lets through
//! without a token ([`crate::server::GrpcServer::public`]; the admission limit still
//! applies), and open-data CSV over plain HTTP on a port of its own (`--public-listen`):
//! a browser downloads CSV over HTTP/1.1, which the gRPC port (HTTP/2 only, and with TLS
//! when it is on) does not speak, and a separate port is what an operator exposes to the
//! public through an ingress while the gRPC port stays internal. When it is off, neither
//! the methods nor the port exist.

use std::fmt::Write as _;
use std::net::SocketAddr;

use axum::response::{IntoResponse, Response};
use tonic_types::StatusExt as _;

use crate::error::ApiError;

/// The public record's settings, flattened into a service's own.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PublicArgs {
    /// Serve the public record: the unauthenticated public gRPC methods (licence
    /// verification, the change feed, the register of resolutions) and their CSV on
    /// --public-listen. Off by default.
    #[arg(long = "public-record", env = "PUBLIC_RECORD", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub public_record: bool,

    /// Address of the public HTTP endpoint (open-data CSV), with --public-record on
    /// [default: 0.0.0.0 and the service's public port: registry 8051, meeting 8053].
    #[arg(long = "public-listen", env = "PUBLIC_LISTEN")]
    pub public_listen: Option<SocketAddr>,
}

impl PublicArgs {
    /// On, with the public HTTP port at `listen` (port 0: any free one, as tests use).
    pub fn on(listen: SocketAddr) -> Self {
        Self {
            public_record: true,
            public_listen: Some(listen),
        }
    }

    /// The address of the public HTTP port when the record is on (`default_port` on all
    /// interfaces unless given).
    pub fn listen(&self, default_port: u16) -> Option<SocketAddr> {
        self.public_record.then(|| {
            self.public_listen
                .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], default_port)))
        })
    }
}

/// The most rows one CSV download holds; the next page is linked (`Link: rel="next"`).
pub const MAX_CSV_ROWS: u64 = 1000;
/// Rows in a CSV download unless `page_size` asks fewer.
pub const DEFAULT_CSV_ROWS: u64 = 500;

/// A CSV download's paging, read from its query string (`?page_size=…&page_token=…`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsvPage {
    pub size: u64,
    pub token: String,
}

impl CsvPage {
    /// Reads `page_size` (1 to [`MAX_CSV_ROWS`]) and `page_token` (an opaque token of the
    /// list, URL-safe as the lists write them) from a query string.
    pub fn from_query(query: Option<&str>) -> Result<Self, ApiError> {
        let mut page = Self {
            size: DEFAULT_CSV_ROWS,
            token: String::new(),
        };
        for pair in query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "page_size" => {
                    page.size = v
                        .parse::<u64>()
                        .ok()
                        .filter(|n| (1..=MAX_CSV_ROWS).contains(n))
                        .ok_or_else(|| {
                            ApiError::invalid(
                                "page_size",
                                format!("must be a number from 1 to {MAX_CSV_ROWS}"),
                            )
                        })?;
                }
                "page_token" => page.token = v.to_owned(),
                _ => {}
            }
        }
        Ok(page)
    }
}

/// One CSV document: a UTF-8 BOM (so that spreadsheet applications read Persian as
/// UTF-8), a header row, the rows, CRLF line ends (RFC 4180), and each field quoted when
/// it holds a comma, a quote or a line break.
#[derive(Debug, Clone)]
pub struct Csv {
    /// The file name a browser saves it as (ASCII).
    pub filename: String,
    pub header: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
    /// The query string of the next page, when there is one.
    pub next_query: Option<String>,
}

/// The UTF-8 byte order mark.
pub const BOM: &str = "\u{feff}";

fn field(out: &mut String, f: &str) {
    // A leading = + - @ would make a spreadsheet run the cell as a formula (CSV
    // injection); a text field starting so is prefixed with a quote mark.
    let guarded = f.starts_with(['=', '+', '-', '@']) && f.parse::<f64>().is_err();
    if guarded || f.contains([',', '"', '\n', '\r']) {
        out.push('"');
        if guarded {
            out.push('\'');
        }
        out.push_str(&f.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(f);
    }
}

impl Csv {
    /// The document's text, BOM first.
    pub fn render(&self) -> String {
        let mut out = String::from(BOM);
        let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
            for (i, c) in cells.enumerate() {
                if i > 0 {
                    out.push(',');
                }
                field(out, c);
            }
            out.push_str("\r\n");
        };
        line(&mut out, &mut self.header.iter().copied());
        for r in &self.rows {
            line(&mut out, &mut r.iter().map(String::as_str));
        }
        out
    }
}

impl IntoResponse for Csv {
    fn into_response(self) -> Response {
        let mut resp = (
            [
                (
                    http::header::CONTENT_TYPE,
                    "text/csv; charset=utf-8".to_owned(),
                ),
                (
                    http::header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{}\"", self.filename),
                ),
            ],
            self.render(),
        )
            .into_response();
        if let Some(q) = &self.next_query
            && let Ok(v) = http::HeaderValue::from_str(&format!("<?{q}>; rel=\"next\""))
        {
            resp.headers_mut().insert(http::header::LINK, v);
        }
        resp
    }
}

/// An error of a public HTTP endpoint: its HTTP status, and the English and Persian
/// messages as plain text (never a cause: an internal error is logged, not sent).
pub fn http_error(e: ApiError) -> Response {
    use http::StatusCode as S;
    use tonic::Code as C;
    let status = e.to_status(&crate::telemetry::current_trace_id());
    let http = match status.code() {
        C::InvalidArgument | C::FailedPrecondition => S::BAD_REQUEST,
        C::NotFound => S::NOT_FOUND,
        C::ResourceExhausted => S::TOO_MANY_REQUESTS,
        C::Unavailable | C::DeadlineExceeded => S::SERVICE_UNAVAILABLE,
        _ => S::INTERNAL_SERVER_ERROR,
    };
    if http == S::INTERNAL_SERVER_ERROR {
        tracing::error!(error = %e, "public endpoint failed");
    }
    let mut text = status.message().to_owned();
    if let Some(fa) = status.get_error_details().localized_message() {
        let _ = write!(text, "\n{}", fa.message);
    }
    text.push('\n');
    (
        http,
        [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

/// The public gRPC methods a service serves (`/package.Service/Method`), read from the
/// API's descriptors: every method of every service of `package` named
/// `PublicRecordService`. The edge lets exactly these through without a token, and the
/// tests check each of them for personal data, so a method added there is both.
pub fn public_methods(package: &str) -> Vec<String> {
    let Ok(set) = <prost_types::FileDescriptorSet as prost::Message>::decode(
        mosharekat_api::FILE_DESCRIPTOR_SET,
    ) else {
        return Vec::new();
    };
    set.file
        .iter()
        .filter(|f| f.package() == package)
        .flat_map(|f| f.service.iter())
        .filter(|s| s.name() == PUBLIC_SERVICE)
        .flat_map(|s| {
            s.method
                .iter()
                .map(move |m| format!("/{package}.{}/{}", s.name(), m.name()))
        })
        .collect()
}

/// The name every package gives its public service.
pub const PUBLIC_SERVICE: &str = "PublicRecordService";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_has_a_bom_crlf_and_quotes_what_needs_it() {
        let csv = Csv {
            filename: "x.csv".into(),
            header: vec!["a", "b"],
            rows: vec![
                vec!["ساده".into(), "با,ویرگول".into()],
                vec!["\"نقل\"".into(), "=HYPERLINK(1)".into()],
                vec!["-12".into(), "two\nlines".into()],
            ],
            next_query: None,
        };
        assert_eq!(
            csv.render(),
            "\u{feff}a,b\r\nساده,\"با,ویرگول\"\r\n\"\"\"نقل\"\"\",\"'=HYPERLINK(1)\"\r\n-12,\"two\nlines\"\r\n"
        );
    }

    #[test]
    fn csv_paging_is_bounded() {
        assert_eq!(CsvPage::from_query(None).unwrap().size, DEFAULT_CSV_ROWS);
        let p = CsvPage::from_query(Some("page_size=10&page_token=abc_-")).unwrap();
        assert_eq!((p.size, p.token.as_str()), (10, "abc_-"));
        for bad in ["page_size=0", "page_size=1001", "page_size=x"] {
            assert!(CsvPage::from_query(Some(bad)).is_err(), "{bad}");
        }
    }

    #[derive(Debug, clap::Parser)]
    struct Flags {
        #[command(flatten)]
        public: PublicArgs,
    }

    #[test]
    fn the_switch_is_a_flag_or_a_value() {
        use clap::Parser as _;
        let parse = |args: &[&str]| {
            Flags::try_parse_from(std::iter::once("x").chain(args.iter().copied()))
                .unwrap()
                .public
        };
        assert!(!parse(&[]).public_record);
        assert!(parse(&["--public-record"]).public_record);
        assert!(parse(&["--public-record=true"]).public_record);
        assert!(!parse(&["--public-record=false"]).public_record);
        let p = parse(&["--public-record", "--public-listen", "127.0.0.1:8081"]);
        assert_eq!(
            p.listen(8051),
            Some(SocketAddr::from(([127, 0, 0, 1], 8081)))
        );
    }

    #[test]
    fn the_switch_is_off_by_default() {
        assert_eq!(PublicArgs::default().listen(8051), None);
        let on = PublicArgs {
            public_record: true,
            public_listen: None,
        };
        assert_eq!(
            on.listen(8051),
            Some(SocketAddr::from(([0, 0, 0, 0], 8051)))
        );
    }
}
