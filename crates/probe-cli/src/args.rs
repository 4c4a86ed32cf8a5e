//! The command line, as clap sees it. Parsing only: every value is turned into
//! probe-core's own types here, so bad input is refused before anything runs.
//! The help texts, the completion scripts and the man page all come from these
//! definitions.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use probe_core::{ConnectionMode, MatrixTrigger, Outcome, StatusSet, VersionSource};

const ABOUT: &str = "Measure how much a service is really down while it is redeployed";

const LONG_ABOUT: &str = "Measure how much a service is really down while it is redeployed: \
rollprobe sends requests at a fixed rate (open loop, like real users), names every failure by \
its real cause, and explains each outage window with the rollout's events, so that deployment \
strategies can be compared by the requests they lose.";

const AFTER_HELP: &str = "\
Example: rollprobe run http://10.0.0.7:8080/version --out run1 -- kubectl rollout restart deployment/web

'rollprobe --help' explains the failure kinds and exit codes; 'rollprobe help COMMAND' a command.";

const AFTER_LONG_HELP: &str = "\
Examples:
  rollprobe demo                                   a local redeploy, probed twice
  rollprobe run http://10.0.0.7:8080/version --duration 60s
  rollprobe run http://10.0.0.7:8080/version --out run1 --max-failures 0 \\
      -- kubectl rollout restart deployment/web
  rollprobe compare run1/report.json run2/report.json

Failure kinds (each request ends in one):
  ok                          the status is in --expect-status
  connection_refused          ECONNREFUSED: no ready endpoint, or the app not listening yet
  host_unreachable            EHOSTUNREACH: the address is gone (ARP failed, IP withdrawn)
  network_unreachable         ENETUNREACH: no route to the address
  connect_timeout             no handshake within --connect-timeout (packets dropped)
  connection_reset            ECONNRESET: a pod killed with the connection open
  connection_closed           EOF before a full response (keep-alive closed on shutdown)
  response_timeout            no full response within --timeout
  http_5xx                    a 5xx from the application itself
  proxy_no_upstream           a proxy (nginx, HAProxy, Envoy) had no server to send it to
  proxy_upstream_failed       a proxy's server refused, reset or closed the connection
  proxy_upstream_timeout      a proxy's server did not answer in the proxy's time
  proxy_overloaded            a proxy shed it (Envoy's overflow)
  unexpected_status           another status outside --expect-status
  dns, tls, other             resolution or handshake failed; anything else (errno kept)
  local_*                     the prober itself ran out of something: never downtime
  skipped                     a tick not sent because --max-in-flight requests were out

Exit codes:
  0  ok
  1  a gate failed: a threshold (--max-failures, --max-downtime) was breached, or the
     trigger failed or was killed by --duration; the line says which
  2  bad usage or input: one line on stderr, before any request is sent
  3  the prober itself failed, or the measurement is not valid";

/// The `rollprobe` command line.
#[derive(Debug, Parser)]
#[command(
    name = "rollprobe",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = AFTER_HELP,
    after_long_help = AFTER_LONG_HELP
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Probe URL at a fixed rate; with `-- COMMAND...`, run that rollout while probing.
    #[command(
        after_help = "Example: rollprobe run http://10.0.0.7:8080/version --rate 100 --out run1 -- kubectl rollout restart deployment/web"
    )]
    Run(Box<RunArgs>),
    /// Rebuild the report from a recorded samples.csv.
    #[command(after_help = "Example: rollprobe report run1/samples.csv --format json")]
    Report(ReportArgs),
    /// Compare runs: one row per report.json.
    #[command(after_help = "Example: rollprobe compare recreate/report.json rolling/report.json")]
    Compare(CompareArgs),
    /// Put runs recorded at several vantage points (in-cluster Jobs, a laptop) on one
    /// clock: one stream per input, aligned by their wall-clock starts.
    #[command(
        after_help = "Example: rollprobe merge node-a node-b laptop --out merged\n\nEach input's own started_at and its shift are printed: the machines' clocks may differ."
    )]
    Merge(MergeArgs),
    /// Redeploy a local service twice (Recreate, then rolling) while probing it.
    #[command(after_help = "Example: rollprobe demo --out rollprobe-demo")]
    Demo(DemoArgs),
    /// Run a rollout in the lab (root): Kubernetes' data path in network namespaces.
    #[command(
        after_help = "Example: sudo rollprobe lab -f examples/seed/recreate.yaml --set-image backend-deployment=shop/backend:v2"
    )]
    Lab(Box<LabArgs>),
    /// Benchmark rollout strategies: one probed rollout per case and repetition.
    #[command(
        after_help = "Example: rollprobe matrix -n shop --url http://10.0.0.7/ --deployment web --case recreate --case rolling:25%/25% --out matrix1"
    )]
    Matrix(Box<MatrixArgs>),
    /// Print a shell completion script on stdout.
    #[command(
        after_help = "Example: rollprobe completions bash > ~/.local/share/bash-completion/completions/rollprobe"
    )]
    Completions {
        /// The shell to complete in.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout, or write one page per command into a folder.
    #[command(
        after_help = "Example: rollprobe man > rollprobe.1 && man -l rollprobe.1\nExample: rollprobe man --dir ~/.local/share/man/man1   # rollprobe(1), rollprobe-run(1) ..."
    )]
    Man {
        /// Write rollprobe.1 and a rollprobe-COMMAND.1 per command into DIR.
        #[arg(long, value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
        dir: Option<PathBuf>,
    },
    /// The versioned app that lab pods run (internal).
    #[command(hide = true)]
    LabApp,
}

/// `rollprobe lab`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LabArgs {
    /// Maintenance of the lab.
    #[command(subcommand)]
    pub action: Option<LabAction>,
    /// Kubernetes YAML with Deployments, Services and Ingresses (repeatable).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The rollout, one step after another (repeatable, run in order after the warm-up):
    /// set-image:DEPLOY=IMAGE, scale:DEPLOY=N, selector:SERVICE:K=V[,K=V],
    /// undo:DEPLOY[=REVISION], restart:DEPLOY, wait:rollout|available|DURATION.
    #[arg(long = "step", value_name = "STEP", value_parser = parse_step)]
    pub steps: Vec<probe_lab::Step>,
    /// One-step shorthand for --step set-image:DEPLOYMENT=IMAGE.
    #[arg(long, value_name = "DEPLOYMENT=IMAGE", value_parser = parse_set_image,
          conflicts_with_all = ["set_selector", "steps"])]
    pub set_image: Option<probe_lab::Step>,
    /// One-step shorthand for --step selector:SERVICE:KEY=VALUE (the Blue/Green switch).
    #[arg(long, value_name = "SERVICE:KEY=VALUE[,KEY=VALUE]", value_parser = parse_set_selector,
          conflicts_with = "steps")]
    pub set_selector: Option<probe_lab::Step>,
    /// The Service to probe [default: the only Service in the files].
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
    #[command(flatten)]
    pub topology: LabOptions,
    #[command(flatten)]
    pub timing: Timing,
    /// Give up on the rollout after this long.
    #[arg(long, default_value = "5m", value_parser = parse_timeout, value_name = "DUR")]
    pub rollout_timeout: Duration,
    #[command(flatten)]
    pub probe: ProbeArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

fn parse_step(s: &str) -> Result<probe_lab::Step, String> {
    s.parse().map_err(|e: probe_lab::LabError| e.to_string())
}

fn parse_set_image(s: &str) -> Result<probe_lab::Step, String> {
    match format!("set-image:{s}").parse() {
        Ok(step @ probe_lab::Step::SetImage { .. }) => Ok(step),
        _ => Err(format!(
            "'{s}': use DEPLOYMENT=IMAGE, e.g. backend-deployment=shop/backend:v2"
        )),
    }
}

fn parse_set_selector(s: &str) -> Result<probe_lab::Step, String> {
    match format!("selector:{s}").parse() {
        Ok(step @ probe_lab::Step::Selector { .. }) => Ok(step),
        _ => Err(format!(
            "'{s}': use SERVICE:KEY=VALUE[,KEY=VALUE], e.g. backend-svc:version=v2"
        )),
    }
}

fn parse_watch(s: &str) -> Result<String, String> {
    match s.split_once('/') {
        Some(("deployment" | "deploy" | "deployments", name)) if !name.is_empty() => {
            Ok(name.to_string())
        }
        _ => Err(format!("'{s}': use deployment/NAME")),
    }
}

fn parse_case(s: &str) -> Result<probe_core::StrategyCase, String> {
    probe_core::StrategyCase::parse(s)
}

fn parse_kernel(s: &str) -> Result<probe_lab::Kernel, String> {
    s.parse()
}

fn parse_proxy_mode(s: &str) -> Result<probe_lab::ProxyMode, String> {
    s.parse()
}

fn parse_vantage(s: &str) -> Result<probe_lab::LabFrom, String> {
    s.parse()
}

/// Per-node kube-proxy sync delays, node 1 first (`--sync-delays 0.5s,3s`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncDelays(pub Vec<Duration>);

fn parse_delays(s: &str) -> Result<SyncDelays, String> {
    s.split(',')
        .map(|d| parse_duration(d.trim()))
        .collect::<Result<Vec<_>, _>>()
        .map(SyncDelays)
}

/// The lab's shape and where its probes stand: shared by `lab` and `matrix --lab`.
#[derive(Debug, Args, Clone)]
pub struct LabOptions {
    /// Kernel settings of the lab's namespaces: stock (Linux defaults, what your machines
    /// do) or tuned (ICMP limits lifted, short neighbour timers: shows each mechanism's errno).
    #[arg(long, default_value = "stock", value_parser = parse_kernel, value_name = "stock|tuned")]
    pub kernel: probe_lab::Kernel,
    /// How each node's kube-proxy writes its rules: iptables (its default) or nftables (the
    /// `ip kube-proxy` table). IPVS mode is not offered: it needs the kernel's IPVS
    /// modules (CONFIG_IP_VS), which these machines lack.
    #[arg(long, default_value = "iptables", value_parser = parse_proxy_mode, value_name = "iptables|nftables")]
    pub proxy_mode: probe_lab::ProxyMode,
    /// Nodes of the lab (1-8): pods spread over them, each node's kube-proxy syncs after its
    /// own delay (node 1 0.5 s, each further node 1 s more), one node announces the
    /// LoadBalancer address.
    #[arg(long, default_value = "1", value_parser = clap::value_parser!(u16).range(1..=8), value_name = "N")]
    pub nodes: u16,
    /// Each node's kube-proxy sync delay, node 1 first (e.g. 0.5s,3s); nodes not listed
    /// keep their default.
    #[arg(long, value_parser = parse_delays, value_name = "DUR[,DUR...]")]
    pub sync_delays: Option<SyncDelays>,
    /// Where the probe stands: client (the LoadBalancer's client host), node[:N] (a node,
    /// calling the ClusterIP) or pod[:N] (a client pod on node N, calling the ClusterIP)
    /// [default: client for a LoadBalancer Service, else node].
    #[arg(long = "from", value_parser = parse_vantage, value_name = "client|node[:N]|pod[:N]")]
    pub from: Vec<probe_lab::LabFrom>,
    /// Put an ingress proxy in front of the Service (the real binary, set up as its
    /// controller sets it up: nginx as ingress-nginx, haproxy, envoy as an Istio gateway);
    /// the probe targets the proxy's own LoadBalancer and its access log is joined to
    /// the samples.
    #[arg(long, value_parser = parse_ingress, value_name = "nginx|haproxy|envoy")]
    pub ingress: Option<probe_lab::IngressKind>,
    /// Run a service mesh: istio puts the real Envoy as a sidecar beside every app pod
    /// (inbound) and in the client pods (outbound, with Istio's default retry; probe
    /// through it with --from pod[:N]); its access log is joined to the samples.
    #[arg(long, value_parser = parse_mesh, value_name = "istio")]
    pub mesh: Option<probe_lab::Mesh>,
}

fn parse_mesh(s: &str) -> Result<probe_lab::Mesh, String> {
    s.parse()
}

fn parse_ingress(s: &str) -> Result<probe_lab::IngressKind, String> {
    s.parse()
}

fn parse_trigger(s: &str) -> Result<MatrixTrigger, String> {
    match s.split_once('=') {
        None if s == "restart" => Ok(MatrixTrigger::Restart),
        None if s == "undo" => Ok(MatrixTrigger::Undo),
        Some(("image", image)) if !image.is_empty() => Ok(MatrixTrigger::Image(image.to_string())),
        _ => Err(format!("'{s}': use restart, image=IMAGE or undo")),
    }
}

/// `rollprobe matrix`.
#[derive(Debug, Args)]
pub struct MatrixArgs {
    /// Run in the lab (root) on the manifests given with -f.
    #[arg(long)]
    pub lab: bool,
    /// Kubernetes YAML for the lab (repeatable).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// A real cluster: the Deployment's namespace.
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// The kubeconfig context [default: the current one].
    #[arg(long, value_name = "CTX")]
    pub context: Option<String>,
    /// The Deployment whose strategy is varied.
    #[arg(long, value_name = "NAME")]
    pub deployment: String,
    /// The URL to probe [lab: the Service's address].
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// The Service to probe in the lab, or to watch in a cluster.
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
    /// A strategy: recreate or rolling:SURGE/UNAVAILABLE, e.g. rolling:25%/25%, rolling:1/0, optionally with a preStop sleep for its runs: rolling:1/0+prestop=5s (repeatable).
    #[arg(long = "case", required = true, value_parser = parse_case, value_name = "CASE")]
    pub cases: Vec<probe_core::StrategyCase>,
    /// What starts each rollout: restart, image=IMAGE (alternating with the original), or undo (kubectl rollout undo; lab only).
    #[arg(long, default_value = "restart", value_parser = parse_trigger, value_name = "TRIGGER")]
    pub trigger: MatrixTrigger,
    #[command(flatten)]
    pub topology: LabOptions,
    /// Runs per case.
    #[arg(long, default_value = "1", value_parser = clap::value_parser!(u32).range(1..=100), value_name = "N")]
    pub repeat: u32,
    #[command(flatten)]
    pub timing: Timing,
    /// Give up on a rollout after this long.
    #[arg(long, default_value = "5m", value_parser = parse_timeout, value_name = "DUR")]
    pub rollout_timeout: Duration,
    #[command(flatten)]
    pub probe: ProbeArgs,
    /// Where every run's report, matrix.csv and matrix.json go (a folder that already
    /// holds a matrix or a run is refused, unless --force).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace the matrix or run that --out DIR already holds (its samples are lost).
    #[arg(long)]
    pub force: bool,
    /// What goes to stdout at the end: the summary table, or matrix.json's content.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Exit 1 if more than N requests failed in any run; KIND=N limits one kind (repeatable).
    #[arg(long, value_parser = parse_failure_limit, value_name = "[KIND=]N")]
    pub max_failures: Vec<FailureLimit>,
    /// Exit 1 if any run's downtime was longer than DUR.
    #[arg(long, value_parser = parse_duration, value_name = "DUR")]
    pub max_downtime: Option<Duration>,
    /// Write JUnit XML: one testsuite per run (case#repeat), one testcase per
    /// threshold and one for "measurement valid".
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// No progress line on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `rollprobe lab cleanup`.
#[derive(Debug, Subcommand)]
pub enum LabAction {
    /// Remove namespaces and rules left behind by killed lab runs.
    Cleanup,
}

/// Any duration option: at most `probe_core::MAX_DURATION` (7 days).
fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = probe_core::parse_duration(s).map_err(|e| e.to_string())?;
    if d > probe_core::MAX_DURATION {
        return Err(format!(
            "'{s}' is longer than 7 days (168h), the longest run rollprobe takes"
        ));
    }
    Ok(d)
}

/// A timeout: as any duration, and above zero (a zero timeout fails every request).
fn parse_metrics_addr(s: &str) -> Result<std::net::SocketAddr, String> {
    probe_core::parse_metrics_addr(s).map_err(|e| e.to_string())
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err(format!("'{s}': a timeout must be above zero, e.g. 5s"));
    }
    Ok(d)
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let rate: f64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number of requests per second"))?;
    probe_core::check_rate(rate).map_err(|_| {
        format!(
            "'{s}': use {} to {} requests per second (0.01 is one request every 100s)",
            probe_core::MIN_RATE,
            probe_core::MAX_RATE
        )
    })
}

fn parse_max_in_flight(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n <= probe_core::MAX_IN_FLIGHT => Ok(n),
        _ => Err(format!(
            "'{s}': use a whole number up to {} (0: rate x timeouts)",
            probe_core::MAX_IN_FLIGHT
        )),
    }
}

fn parse_header(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once(':')
        .ok_or_else(|| format!("'{s}' is not a header: use 'Name: value'"))?;
    let k = k.trim();
    if k.is_empty() {
        return Err(format!("'{s}' has no header name: use 'Name: value'"));
    }
    Ok((k.to_string(), v.trim().to_string()))
}

fn parse_status(s: &str) -> Result<StatusSet, String> {
    s.parse()
        .map_err(|e: probe_core::ConfigError| e.to_string())
}

fn parse_version(s: &str) -> Result<VersionSource, String> {
    s.parse()
        .map_err(|e: probe_core::ConfigError| e.to_string())
}

/// `fresh`, `keepalive` or `both`, listed so that shell completion offers them.
fn connection_parser() -> impl clap::builder::TypedValueParser<Value = ConnectionMode> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(["fresh", "keepalive", "both"])
        .try_map(|s| s.parse::<ConnectionMode>())
}

/// A `--max-failures` value: a limit on all failures, or on one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureLimit {
    /// `None`: all target failures.
    pub kind: Option<Outcome>,
    /// Most allowed.
    pub max: u64,
}

fn parse_failure_limit(s: &str) -> Result<FailureLimit, String> {
    let (kind, n) = match s.split_once('=') {
        Some((k, n)) => {
            let kind = k.trim().parse::<Outcome>().map_err(|e| e.to_string())?;
            if !kind.is_failure() {
                return Err(format!(
                    "'{kind}' is not a failure kind: limit a failure kind such as connection_refused=0"
                ));
            }
            (Some(kind), n)
        }
        None => (None, s),
    };
    let max = n
        .trim()
        .parse()
        .map_err(|_| format!("'{n}' is not a whole number of failures"))?;
    Ok(FailureLimit { kind, max })
}

/// Output format of a run's summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// A summary for people.
    #[default]
    Text,
    /// report.json on stdout.
    Json,
}

/// Output format of `compare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum TableFormat {
    /// An aligned table.
    #[default]
    Text,
    /// CSV.
    Csv,
    /// JSON.
    Json,
    /// One self-contained page: downtime, failures and rollout duration per case,
    /// linking to each report's report.html.
    Html,
}

/// The probing around a rollout: shared by `run`, `lab` and `matrix`.
#[derive(Debug, Clone, Copy, Args)]
pub struct Timing {
    /// Probe this long before the rollout starts.
    #[arg(long, default_value = "2s", value_parser = parse_duration, value_name = "DUR")]
    pub warmup: Duration,
    /// Keep probing this long after the rollout ends.
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DUR")]
    pub settle: Duration,
}

/// How requests are made and judged: shared by `run` and the lab.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Requests per second (open loop: sent on schedule whatever the answers).
    #[arg(long, default_value = "50", value_parser = parse_rate, value_name = "N")]
    pub rate: f64,
    /// fresh: a new connection per request (sees connect errors); keepalive: pooled
    /// (sees resets from terminating pods); both: one stream of each, side by side.
    #[arg(long, default_value = "fresh", value_parser = connection_parser(), value_name = "MODE")]
    pub connection: ConnectionMode,
    /// Response timeout, from connected to the full answer.
    #[arg(long, default_value = "5s", value_parser = parse_timeout, value_name = "DUR")]
    pub timeout: Duration,
    /// Connect timeout (keep it above 3s so a failed ARP shows as host_unreachable).
    #[arg(long, default_value = "5s", value_parser = parse_timeout, value_name = "DUR")]
    pub connect_timeout: Duration,
    /// Cap on requests in flight; ticks over it are counted as skipped [default: rate x timeouts].
    #[arg(long, value_parser = parse_max_in_flight, value_name = "N")]
    pub max_in_flight: Option<usize>,
    /// Statuses that count as ok, e.g. 200-299,304.
    #[arg(long, default_value = "200-299", value_parser = parse_status, value_name = "LIST")]
    pub expect_status: StatusSet,
    /// Where the version comes from: body, header:NAME, json:/pointer or regex:RE.
    #[arg(long, default_value = "body", value_parser = parse_version, value_name = "SRC")]
    pub version_from: VersionSource,
    /// Which pod answered: header:NAME, json:/pointer or regex:RE (e.g. header:x-pod-name).
    #[arg(long, value_parser = parse_version, value_name = "SRC")]
    pub pod_from: Option<VersionSource>,
    /// Do not send `x-request-id: <run id>-<stream>-<seq>` with each request.
    #[arg(long)]
    pub no_request_id: bool,
    /// HTTP method.
    #[arg(
        short = 'X',
        long = "method",
        default_value = "GET",
        value_name = "METHOD"
    )]
    pub method: String,
    /// Extra request header, 'Name: value' (repeatable).
    #[arg(short = 'H', long = "header", value_parser = parse_header, value_name = "HEADER")]
    pub headers: Vec<(String, String)>,
    /// Request body.
    #[arg(long, value_name = "BODY")]
    pub data: Option<String>,
    /// Connect to ADDR for HOST:PORT, keeping HOST in the Host header and TLS name, as
    /// curl's --resolve (repeatable; ADDR an IPv4 or [IPv6] address).
    #[arg(long, value_parser = parse_resolve, value_name = "HOST:PORT:ADDR")]
    pub resolve: Vec<probe_core::ResolveRule>,
    /// Trust the CA certificates of this PEM file too, beside the system's store.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<std::path::PathBuf>,
    /// Do not verify the server's certificate (said in the report).
    #[arg(short = 'k', long)]
    pub insecure: bool,
}

fn parse_resolve(s: &str) -> Result<probe_core::ResolveRule, String> {
    s.parse().map_err(|e| match e {
        probe_core::ConfigError::Value { reason, .. } => reason,
        other => other.to_string(),
    })
}

/// What to do with the result: shared by `run` and the lab.
#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Name of the run in reports, e.g. recreate.
    #[arg(long, value_name = "NAME")]
    pub label: Option<String>,
    /// Write report.json, samples.csv, events.csv and windows.csv into DIR (a folder
    /// that already holds a run is refused, unless --force).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Replace the run that --out DIR already holds (its samples are lost).
    #[arg(long)]
    pub force: bool,
    /// What goes to stdout at the end.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Exit 1 if more than N requests failed; KIND=N limits one kind (repeatable).
    #[arg(long, value_parser = parse_failure_limit, value_name = "[KIND=]N")]
    pub max_failures: Vec<FailureLimit>,
    /// Exit 1 if the downtime was longer than DUR.
    #[arg(long, value_parser = parse_duration, value_name = "DUR")]
    pub max_downtime: Option<Duration>,
    /// Write the gate's result as JUnit XML: one testcase per threshold and one for
    /// "measurement valid".
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Serve live OpenMetrics at http://HOST:PORT/metrics while probing, for Prometheus.
    #[arg(long, value_parser = parse_metrics_addr, value_name = "HOST:PORT")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// No progress line on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `rollprobe run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The URL to probe, e.g. http://10.0.0.7:8080/test/version.
    pub url: String,
    #[command(flatten)]
    pub probe: ProbeArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Stop after this long (without a trigger: otherwise Ctrl-C stops).
    #[arg(long, value_parser = parse_duration, value_name = "DUR")]
    pub duration: Option<Duration>,
    #[command(flatten)]
    pub timing: Timing,
    /// Each line read from stdin becomes a mark on the timeline.
    #[arg(long)]
    pub marks_stdin: bool,
    /// Watch a Kubernetes rollout and put its events on the timeline: deployment/NAME.
    #[arg(long, value_parser = parse_watch, value_name = "deployment/NAME")]
    pub watch: Option<String>,
    /// The namespace of --watch [default: the kubeconfig's].
    #[arg(short = 'n', long, requires = "watch", value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// The Service whose endpoints --watch follows.
    #[arg(long, requires = "watch", value_name = "NAME")]
    pub service: Option<String>,
    /// The kubeconfig context for --watch [default: the current one].
    #[arg(long, requires = "watch", value_name = "CTX")]
    pub context: Option<String>,
    /// A proxy's access log (README, "Access logs"), joined by x-request-id at the end:
    /// fills samples.csv's upstream column and counts the requests the proxy retried.
    #[arg(long, requires = "out", value_name = "FILE")]
    pub access_log: Option<PathBuf>,
    /// The rollout command to run while probing (after --).
    #[arg(last = true, value_name = "TRIGGER")]
    pub trigger: Vec<String>,
}

/// `rollprobe report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A run folder written by `rollprobe run --out`, or its samples.csv.
    #[arg(value_name = "DIR|SAMPLES.csv")]
    pub samples: PathBuf,
    /// Also rebuild report.json, windows.csv, timeline.csv and report.html in this folder.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The events file [default: events.csv beside the samples, if there is one].
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
    /// What goes to stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// A proxy's access log (README, "Access logs"), joined by x-request-id: fills
    /// samples.csv's upstream column and counts the requests the proxy retried.
    #[arg(long, value_name = "FILE")]
    pub access_log: Option<PathBuf>,
}

/// `rollprobe merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Run folders written by `rollprobe run --out` (two or more).
    #[arg(required = true, num_args = 2.., value_name = "DIR")]
    pub runs: Vec<PathBuf>,
    /// Where the merged run goes (samples.csv, events.csv, run.json and every report
    /// file; a folder that already holds a run is refused, unless --force).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace the run that --out DIR already holds.
    #[arg(long)]
    pub force: bool,
    /// What goes to stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `rollprobe compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// report.json files.
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,
    /// Output format (html: matrix.html's page for these reports, on stdout).
    #[arg(long, value_enum, default_value_t = TableFormat::Text)]
    pub format: TableFormat,
}

/// `rollprobe demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the two runs' reports go.
    #[arg(long, default_value = "rollprobe-demo", value_name = "DIR")]
    pub out: PathBuf,
    /// Requests per second.
    #[arg(long, default_value = "200", value_parser = parse_rate, value_name = "N")]
    pub rate: f64,
    /// No progress line on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}
