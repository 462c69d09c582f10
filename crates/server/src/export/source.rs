//! Reading `$all` over the EventStoreDB protocol with the generated tonic client: the target
//! (`--server` in any of its forms, credentials, TLS), the head of the log, and pages of
//! events from a position.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status, Streaming};

use super::record::Record;
use super::{ExportError, Filter};
use crate::esdb::proto::event_store::client::streams::read_req::options::{
    self as read_options, AllOptions, FilterOptions, ReadDirection, UuidOption,
};
use crate::esdb::proto::event_store::client::streams::read_resp::{self, ReadEvent};
use crate::esdb::proto::event_store::client::streams::streams_client::StreamsClient;
use crate::esdb::proto::event_store::client::streams::{ReadReq, ReadResp, read_req};
use crate::esdb::proto::event_store::client::{Empty, Uuid, uuid};

/// Where and how to connect, parsed from `--server`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// `http://host:port` or `https://host:port`.
    pub url: String,
    /// Whether TLS is used.
    pub tls: bool,
    /// `user:password` from the address, if any.
    pub basic: Option<(String, String)>,
    /// The address without credentials, for messages.
    pub display: String,
}

/// Parses `host:port`, `http(s)://[user:password@]host:port`, or an EventStoreDB connection
/// string (`esdb://`, `kurrentdb://`, `kurrent://`, `kdb://`; TLS unless `?tls=false`).
pub fn parse_target(server: &str) -> Result<Target, String> {
    let (scheme, rest) = match server.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
        None => ("http".to_owned(), server),
    };
    let (authority, query) = match rest.split_once('?') {
        Some((a, q)) => (a, q),
        None => (rest, ""),
    };
    let authority = authority.trim_end_matches('/');
    if authority.contains('/') {
        return Err(format!("{server:?} has a path; give only host:port"));
    }
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    if host.is_empty() {
        return Err(format!("{server:?} has no host"));
    }
    if host.contains(',') {
        return Err(format!(
            "{server:?} names several hosts; the export reads from one node: give one host:port"
        ));
    }
    let mut tls = match scheme.as_str() {
        "http" => false,
        "https" => true,
        "esdb" | "kurrentdb" | "kurrent" | "kdb" => true,
        other if other.ends_with("+discover") => {
            return Err(format!(
                "{other}:// asks for cluster discovery; give the address of one node instead"
            ));
        }
        other => return Err(format!("unknown scheme {other}:// in {server:?}")),
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key.eq_ignore_ascii_case("tls") {
            tls = match value.to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(format!(
                        "tls={value:?} in {server:?} is neither true nor false"
                    ));
                }
            };
        }
    }
    let basic = match userinfo {
        None => None,
        Some(info) => {
            let (user, password) = info
                .split_once(':')
                .ok_or_else(|| format!("credentials in {server:?} are not user:password"))?;
            Some((percent_decode(user)?, percent_decode(password)?))
        }
    };
    let default_port = if host.contains(':') && !host.ends_with(']') {
        ""
    } else {
        ":2113"
    };
    let scheme = if tls { "https" } else { "http" };
    Ok(Target {
        url: format!("{scheme}://{host}{default_port}"),
        tls,
        basic,
        display: format!("{scheme}://{host}{default_port}"),
    })
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad %-escape in {text:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{text:?} is not UTF-8 once decoded"))
}

/// A connected reader of `$all`.
#[derive(Debug)]
pub struct Source {
    client: StreamsClient<Channel>,
    authorization: Option<MetadataValue<Ascii>>,
    server: String,
}

impl Source {
    /// Connects to `server`. Credentials: `--token` (Bearer), else `user:password@` in the
    /// address (Basic), else the environment's token (Bearer).
    pub async fn connect(
        server: &str,
        token: Option<String>,
        env_token: Option<String>,
        ca_cert: Option<&Path>,
    ) -> Result<Source, ExportError> {
        let target = parse_target(server)
            .map_err(|e| ExportError::Usage(format!("invalid --server: {e}")))?;
        if token.is_some() && target.basic.is_some() {
            return Err(ExportError::Usage(
                "give either --token or user:password@ in --server, not both".into(),
            ));
        }
        let header = match (token, &target.basic, env_token) {
            (Some(t), _, _) => Some(format!("Bearer {t}")),
            (None, Some((user, password)), _) => Some(format!(
                "Basic {}",
                BASE64.encode(format!("{user}:{password}"))
            )),
            (None, None, Some(t)) if !t.is_empty() => Some(format!("Bearer {t}")),
            _ => None,
        };
        let authorization = header
            .map(|h| {
                h.parse().map_err(|_| {
                    ExportError::Usage(
                        "the credentials have characters a header cannot hold".into(),
                    )
                })
            })
            .transpose()?;
        let connect_error = |message: String| ExportError::Connect {
            server: target.display.clone(),
            message,
        };
        let mut endpoint = Endpoint::from_shared(target.url.clone())
            .map_err(|e| ExportError::Usage(format!("invalid --server {}: {e}", target.display)))?
            .connect_timeout(Duration::from_secs(10));
        if target.tls {
            let Some(path) = ca_cert else {
                return Err(ExportError::Usage(format!(
                    "{} uses TLS: give --ca-cert with the CA that signed the server's \
                     certificate (or use http:// / ?tls=false for a plaintext server)",
                    target.display
                )));
            };
            let pem = std::fs::read(path)
                .map_err(|e| ExportError::io("cannot read --ca-cert", path, e))?;
            endpoint = endpoint
                .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)))
                .map_err(|e| connect_error(e.to_string()))?;
        }
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| connect_error(error_chain(&e)))?;
        Ok(Source {
            client: StreamsClient::new(channel).max_decoding_message_size(64 << 20),
            authorization,
            server: target.display,
        })
    }

    fn request(&self, options: read_req::Options) -> Request<ReadReq> {
        let mut request = Request::new(ReadReq {
            options: Some(options),
        });
        if let Some(value) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        request
    }

    fn failed(&self, status: &Status) -> ExportError {
        let server = self.server.clone();
        let code = format!("{:?}", status.code());
        let message = status.message().to_owned();
        match status.code() {
            Code::Unauthenticated | Code::PermissionDenied => ExportError::Credentials {
                server,
                code,
                message,
            },
            Code::Unavailable => ExportError::Connect { server, message },
            _ => ExportError::Read {
                server,
                code,
                message,
            },
        }
    }

    /// The position of the last event in `$all` (`None` when the log is empty).
    pub async fn head(&mut self) -> Result<Option<u64>, ExportError> {
        let options = options(
            read_options::all_options::AllOption::End(Empty {}),
            ReadDirection::Backwards,
            1,
            &Filter::None,
        );
        let request = self.request(options);
        let mut stream = self
            .client
            .read(request)
            .await
            .map_err(|s| self.failed(&s))?
            .into_inner();
        let mut page = Page {
            stream: &mut stream,
            server: &self.server,
        };
        let head = page.next().await?;
        Ok(head.map(|r| r.position))
    }

    /// Reads up to `count` events of `$all` forwards from `from` (inclusive), filtered.
    pub async fn read_page(
        &mut self,
        from: u64,
        count: u64,
        filter: &Filter,
    ) -> Result<Pages, ExportError> {
        let position = read_options::all_options::AllOption::Position(read_options::Position {
            commit_position: from,
            prepare_position: from,
        });
        let request = self.request(options(position, ReadDirection::Forwards, count, filter));
        let stream = self
            .client
            .read(request)
            .await
            .map_err(|s| self.failed(&s))?
            .into_inner();
        Ok(Pages {
            stream,
            server: self.server.clone(),
        })
    }
}

fn options(
    from: read_options::all_options::AllOption,
    direction: ReadDirection,
    count: u64,
    filter: &Filter,
) -> read_req::Options {
    use read_options::filter_options::{Expression, Filter as Which, Window};
    let expression = |regex: &str, prefix: &[String]| Expression {
        regex: regex.to_owned(),
        prefix: prefix.to_vec(),
    };
    let which = match filter {
        Filter::None => None,
        Filter::StreamPrefix(p) => Some(Which::StreamIdentifier(expression("", p))),
        Filter::StreamRegex(r) => Some(Which::StreamIdentifier(expression(r, &[]))),
        Filter::EventTypePrefix(p) => Some(Which::EventType(expression("", p))),
        Filter::EventTypeRegex(r) => Some(Which::EventType(expression(r, &[]))),
    };
    let filter_option = match which {
        None => read_options::FilterOption::NoFilter(Empty {}),
        Some(which) => read_options::FilterOption::Filter(FilterOptions {
            filter: Some(which),
            window: Some(Window::Count(Empty {})),
            checkpoint_interval_multiplier: 1,
        }),
    };
    read_req::Options {
        stream_option: Some(read_options::StreamOption::All(AllOptions {
            all_option: Some(from),
        })),
        read_direction: direction as i32,
        resolve_links: false,
        count_option: Some(read_options::CountOption::Count(count)),
        filter_option: Some(filter_option),
        uuid_option: Some(UuidOption {
            content: Some(read_options::uuid_option::Content::String(Empty {})),
        }),
        control_option: Some(read_options::ControlOption { compatibility: 1 }),
    }
}

/// The events of one read, in order.
#[derive(Debug)]
pub struct Pages {
    stream: Streaming<ReadResp>,
    server: String,
}

impl Pages {
    /// The next event, `None` at the end of the page.
    pub async fn next(&mut self) -> Result<Option<Record>, ExportError> {
        Page {
            stream: &mut self.stream,
            server: &self.server,
        }
        .next()
        .await
    }
}

struct Page<'a> {
    stream: &'a mut Streaming<ReadResp>,
    server: &'a str,
}

impl Page<'_> {
    async fn next(&mut self) -> Result<Option<Record>, ExportError> {
        loop {
            let message = match self.stream.message().await {
                Ok(Some(m)) => m,
                Ok(None) => return Ok(None),
                Err(status) => {
                    let server = self.server.to_owned();
                    let code = format!("{:?}", status.code());
                    let message = status.message().to_owned();
                    return Err(match status.code() {
                        Code::Unauthenticated | Code::PermissionDenied => {
                            ExportError::Credentials {
                                server,
                                code,
                                message,
                            }
                        }
                        _ => ExportError::Read {
                            server,
                            code,
                            message,
                        },
                    });
                }
            };
            match message.content {
                Some(read_resp::Content::Event(event)) => {
                    return record(event)
                        .map(Some)
                        .map_err(|message| ExportError::Protocol {
                            server: self.server.to_owned(),
                            message,
                        });
                }
                Some(read_resp::Content::StreamNotFound(_)) => {
                    return Err(ExportError::Protocol {
                        server: self.server.to_owned(),
                        message: "stream not found while reading $all".into(),
                    });
                }
                // Checkpoints, confirmations and the like carry no event.
                _ => {}
            }
        }
    }
}

/// Converts a read event into a [`Record`].
pub fn record(read: ReadEvent) -> Result<Record, String> {
    let event = read.event.ok_or("an event message without its event")?;
    let position = match read.position {
        Some(read_resp::read_event::Position::CommitPosition(p)) => p,
        _ => event.commit_position,
    };
    let stream = event
        .stream_identifier
        .map(|s| String::from_utf8_lossy(&s.stream_name).into_owned())
        .ok_or_else(|| format!("the event at {position} has no stream name"))?;
    let mut metadata = event.metadata;
    let created = metadata.get("created").map_or(Ok(0), |c| {
        c.parse::<i64>()
            .map_err(|_| format!("the event at {position} has created={c:?}, not ticks"))
    })?;
    Ok(Record {
        position,
        stream,
        revision: event.stream_revision,
        event_id: event.id.map(uuid_string).unwrap_or_default(),
        event_type: metadata.remove("type").unwrap_or_default(),
        created_ticks: created,
        content_type: metadata.remove("content-type").unwrap_or_default(),
        data: event.data,
        metadata: event.custom_metadata,
    })
}

/// A UUID in its canonical hyphenated form, whichever encoding the server used.
pub fn uuid_string(id: Uuid) -> String {
    match id.value {
        Some(uuid::Value::String(s)) => s,
        Some(uuid::Value::Structured(s)) => {
            let bits = (u128::from(s.most_significant_bits as u64) << 64)
                | u128::from(s.least_significant_bits as u64);
            let hex = format!("{bits:032x}");
            format!(
                "{}-{}-{}-{}-{}",
                &hex[..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..]
            )
        }
        None => String::new(),
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses_in_every_form() {
        let t = parse_target("127.0.0.1:2113").unwrap();
        assert_eq!(
            (t.url.as_str(), t.tls, t.basic),
            ("http://127.0.0.1:2113", false, None)
        );
        let t = parse_target("https://db.example:443").unwrap();
        assert_eq!((t.url.as_str(), t.tls), ("https://db.example:443", true));
        let t = parse_target("esdb://admin:chan%40ge@localhost:2113?tls=false").unwrap();
        assert_eq!(t.url, "http://localhost:2113");
        assert_eq!(t.basic, Some(("admin".into(), "chan@ge".into())));
        assert_eq!(t.display, "http://localhost:2113");
        let t = parse_target("kurrentdb://localhost").unwrap();
        assert_eq!((t.url.as_str(), t.tls), ("https://localhost:2113", true));
        for bad in [
            "ftp://x:1",
            "esdb+discover://a:1",
            "esdb://a:1,b:2",
            "http://x:1/path",
            "http://user@x:1",
            "esdb://x:1?tls=maybe",
        ] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn structured_uuids_print_in_canonical_form() {
        let id = Uuid {
            value: Some(uuid::Value::Structured(uuid::Structured {
                most_significant_bits: 0x0123_4567_89ab_cdef_u64 as i64,
                least_significant_bits: 0xfedc_ba98_7654_3210_u64 as i64,
            })),
        };
        assert_eq!(uuid_string(id), "01234567-89ab-cdef-fedc-ba9876543210");
    }
}
