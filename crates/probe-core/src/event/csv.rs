//! events.csv: every event of a run, streamed as it is recorded, and read back
//! for `rollprobe report` (including files written before subjects were typed,
//! whose `detail` text is parsed here, once, into a [`Subject`]).

use std::fs::File;
use std::io::{self, BufWriter};
use std::net::IpAddr;
use std::path::Path;

use super::{Event, EventKind, Subject};

/// The columns of events.csv: the original four, then the subject's typed fields
/// (`proxy` last: it came later, and files without it still read).
const EVENT_COLUMNS: [&str; 12] = [
    "at_ms",
    "kind",
    "detail",
    "server_time",
    "pod",
    "address",
    "port",
    "node",
    "version",
    "service",
    "deployment",
    "proxy",
];

fn event_record(e: &Event) -> [String; 12] {
    let s = &e.subject;
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    [
        e.at_ms.to_string(),
        e.kind.as_str().to_string(),
        e.detail.clone(),
        opt(&e.server_time),
        opt(&s.pod),
        s.address.map(|a| a.to_string()).unwrap_or_default(),
        s.port.map(|p| p.to_string()).unwrap_or_default(),
        opt(&s.node),
        opt(&s.version),
        opt(&s.service),
        opt(&s.deployment),
        opt(&s.proxy),
    ]
}

/// Appends events to events.csv as they happen, flushing each one: they are rare
/// and a killed run must keep them.
pub struct EventWriter {
    inner: csv::Writer<BufWriter<File>>,
}

impl EventWriter {
    /// Creates the file.
    pub fn create(path: &Path) -> io::Result<EventWriter> {
        let inner = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(BufWriter::new(File::create(path)?));
        let mut w = EventWriter { inner };
        w.inner
            .write_record(EVENT_COLUMNS)
            .map_err(io::Error::other)?;
        w.inner.flush()?;
        Ok(w)
    }

    /// Appends one event and flushes it to the file.
    pub fn write(&mut self, event: &Event) -> io::Result<()> {
        self.inner
            .write_record(event_record(event))
            .map_err(io::Error::other)?;
        // csv's flush also flushes the BufWriter beneath it.
        self.inner.flush()
    }
}

/// Reads events.csv, of this version or an older one.
///
/// Files written before events had typed columns hold only `at_ms,kind,detail,server_time`;
/// their subjects are recovered from the detail's wording here, at the reader's boundary
/// ([`legacy_subject`]), so that nothing after it ever parses text.
pub fn read_events(path: &Path) -> io::Result<Vec<Event>> {
    let fail = |what: String| io::Error::other(format!("{}: {what}", path.display()));
    let mut r = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|e| fail(e.to_string()))?;
    let headers = r.headers().map_err(|e| fail(e.to_string()))?.clone();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (Some(at), Some(kind), Some(detail)) = (col("at_ms"), col("kind"), col("detail")) else {
        return Err(fail(
            "not an events.csv (its header lacks at_ms, kind or detail)".into(),
        ));
    };
    let server_time = col("server_time");
    let typed = col("pod").is_some();
    let mut events = Vec::new();
    for (i, row) in r.records().enumerate() {
        let row = row.map_err(|e| fail(e.to_string()))?;
        let field = |c: Option<usize>| {
            c.and_then(|c| row.get(c))
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let line = i + 2;
        let at_ms: f64 = row
            .get(at)
            .unwrap_or("")
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| fail(format!("line {line}: at_ms is not a number")))?;
        let kind = EventKind::from(row.get(kind).unwrap_or(""));
        let detail = row.get(detail).unwrap_or("").to_string();
        let subject = if typed {
            Subject {
                pod: field(col("pod")),
                address: field(col("address")).and_then(|a| a.parse().ok()),
                port: field(col("port")).and_then(|p| p.parse().ok()),
                node: field(col("node")),
                version: field(col("version")),
                service: field(col("service")),
                deployment: field(col("deployment")),
                proxy: field(col("proxy")),
            }
        } else {
            legacy_subject(&kind, &detail)
        };
        events.push(Event {
            at_ms,
            kind,
            detail,
            server_time: field(server_time),
            subject,
        });
    }
    Ok(events)
}

/// The subject of an event written before events were typed, from its detail's
/// wording: pods as `NAME IP [VERSION]`, endpoints as `SERVICE IP:PORT [POD]` (the lab)
/// or `NAME IP ...` (the Kubernetes watch). Used only by [`read_events`].
fn legacy_subject(kind: &EventKind, detail: &str) -> Subject {
    let tokens: Vec<&str> = detail.split_whitespace().collect();
    let address_at = tokens.iter().position(|t| {
        let host = t.rsplit_once(':').map(|(h, _)| h).unwrap_or(t);
        host.parse::<IpAddr>().is_ok()
    });
    let (address, port) = match address_at {
        Some(i) => match tokens[i].rsplit_once(':') {
            Some((h, p)) if h.parse::<IpAddr>().is_ok() => (h.parse().ok(), p.parse().ok()),
            _ => (tokens[i].parse().ok(), None),
        },
        None => (None, None),
    };
    if kind.is_pod() {
        Subject {
            pod: tokens.first().map(|t| t.to_string()),
            address,
            version: address_at
                .and_then(|i| tokens.get(i + 1))
                .filter(|t| !t.contains('='))
                .map(|t| t.to_string()),
            ..Subject::default()
        }
    } else if kind.is_endpoint() {
        Subject {
            service: tokens
                .first()
                .filter(|_| address_at != Some(0))
                .map(|t| t.to_string()),
            address,
            port,
            pod: address_at
                .and_then(|i| tokens.get(i + 1))
                .map(|t| t.to_string()),
            ..Subject::default()
        }
    } else {
        Subject::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_details_give_typed_subjects() {
        let pod = legacy_subject(&EventKind::PodReady, "backend-7bq5x-x2m4p 10.244.0.5 v2");
        assert_eq!(pod.pod.as_deref(), Some("backend-7bq5x-x2m4p"));
        assert_eq!(pod.address, Some("10.244.0.5".parse().unwrap()));
        assert_eq!(pod.version.as_deref(), Some("v2"));
        let lab_endpoint = legacy_subject(
            &EventKind::EndpointRemoved,
            "backend-svc 10.244.0.3:8080 backend-x",
        );
        assert_eq!(lab_endpoint.service.as_deref(), Some("backend-svc"));
        assert_eq!(lab_endpoint.address, Some("10.244.0.3".parse().unwrap()));
        assert_eq!(lab_endpoint.port, Some(8080));
        assert_eq!(lab_endpoint.pod.as_deref(), Some("backend-x"));
        let nothing = legacy_subject(&EventKind::Mark, "10.0.0.1 deploy");
        assert!(nothing.is_empty());
    }

    #[test]
    fn events_csv_round_trips_typed_and_reads_legacy() {
        let dir = std::env::temp_dir().join(format!("rollprobe-events-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("events.csv");
        let ip: IpAddr = "10.244.0.9".parse().unwrap();
        let written = vec![
            Event::new(12.5, EventKind::PodReady, "web-a 10.244.0.9 v1")
                .with_subject(Subject::pod("web-a", Some(ip)).with_version("v1")),
            Event::new(20.0, EventKind::Other("custom".into()), "with, a comma")
                .with_server_time(Some("2026-01-01T00:00:00Z".into())),
        ];
        let mut w = EventWriter::create(&path).unwrap();
        for e in &written {
            w.write(e).unwrap();
        }
        assert_eq!(read_events(&path).unwrap(), written);
        std::fs::write(
            &path,
            "at_ms,kind,detail,server_time\n5,endpoint_added,svc 10.244.0.9:8080 web-a,\n",
        )
        .unwrap();
        let legacy = read_events(&path).unwrap();
        assert_eq!(legacy[0].subject.address, Some(ip));
        assert_eq!(legacy[0].subject.pod.as_deref(), Some("web-a"));
        std::fs::write(&path, "at_ms,kind,detail\nNaN,mark,x\n").unwrap();
        assert!(read_events(&path).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A proxy's upstream change keeps the proxy in its own column, after every older
    /// one; a typed file from before that column reads with no proxy.
    #[test]
    fn the_proxy_column_round_trips_and_older_typed_files_read() {
        let dir =
            std::env::temp_dir().join(format!("rollprobe-events-proxy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("events.csv");
        let ip: IpAddr = "10.244.1.4".parse().unwrap();
        let written = vec![Event::new(
            40.0,
            EventKind::ProxyUpstreamRemoved,
            "ingress-nginx-controller-0 drops web-a",
        )
        .with_subject(
            Subject::endpoint("web", ip, Some(8080))
                .with_pod("web-a")
                .with_proxy("ingress-nginx-controller-0"),
        )];
        let mut w = EventWriter::create(&path).unwrap();
        w.write(&written[0]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("at_ms,kind,detail,server_time,pod,address,port,node,version,service,deployment,proxy\n"),
            "{text}"
        );
        assert_eq!(read_events(&path).unwrap(), written);
        std::fs::write(
            &path,
            "at_ms,kind,detail,server_time,pod,address,port,node,version,service,deployment\n\
             7,proxy_upstreams_updated,x,,ingress-nginx-controller-0,10.244.15.251,,node-1,,web,\n",
        )
        .unwrap();
        let older = read_events(&path).unwrap();
        assert_eq!(older[0].kind, EventKind::ProxyUpstreamsUpdated);
        assert_eq!(
            older[0].subject.pod.as_deref(),
            Some("ingress-nginx-controller-0")
        );
        assert_eq!(older[0].subject.proxy, None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
