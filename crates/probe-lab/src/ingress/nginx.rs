//! nginx as ingress-nginx runs it.
//!
//! ingress-nginx does not write pod addresses into `upstream` blocks: a reload to change
//! them would close every idle client keep-alive connection. It has one `upstream
//! upstream_balancer` whose peer a Lua balancer picks per try from the backend list the
//! controller POSTs to `/configuration/backends` on a port only the pod's loopback
//! reaches; the request's `$proxy_upstream_name` says which list. This file renders the
//! same shape with Debian's `libnginx-mod-http-lua`: round robin over the list (ingress-
//! nginx's default balancer), `proxy_next_upstream error timeout` with 3 tries, and
//! nginx's own 503 when the list is empty (ingress-nginx's answer for a Service without
//! endpoints, which probe-core classifies as nginx's `proxy_no_upstream`). A request no
//! route matches gets nginx's own 404. The POST body is the lab's simplification of
//! ingress-nginx's JSON: the upstream addresses separated by spaces.

use std::io::{Read, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpStream};
use std::path::Path;
use std::time::Duration;

use super::{hosts, write_file, ProxyConfig, INGRESS_PORT};
use crate::error::LabError;
use crate::netns::in_netns;

/// Debian's nginx Lua module (package `libnginx-mod-http-lua`).
pub(super) const LUA_MODULE: &str = "/usr/lib/nginx/modules/ngx_http_lua_module.so";
/// The Nginx Development Kit module the Lua module needs.
const NDK_MODULE: &str = "/usr/lib/nginx/modules/ndk_http_module.so";
/// ingress-nginx's local configuration port.
const CONFIG_PORT: u16 = 10246;

/// The Lua side: `rewrite` answers 503 for a backend without upstreams, `balance` picks
/// the next upstream of the list round robin, for the first try and every retry.
const LUA: &str = r#"
  init_by_lua_block {
    rollprobe_balancer = { next = {} }
    function rollprobe_balancer.rewrite()
      local raw = ngx.shared.backends:get(ngx.var.proxy_upstream_name)
      local list = {}
      if raw then
        for address, port in raw:gmatch("([%d%.]+):(%d+)") do
          list[#list + 1] = { address, tonumber(port) }
        end
      end
      if #list == 0 then
        return ngx.exit(ngx.HTTP_SERVICE_UNAVAILABLE)
      end
      ngx.ctx.upstreams = list
    end
    function rollprobe_balancer.balance()
      local list = ngx.ctx.upstreams
      local name = ngx.var.proxy_upstream_name
      local i = (rollprobe_balancer.next[name] or 0) % #list + 1
      rollprobe_balancer.next[name] = i
      local balancer = require("ngx.balancer")
      balancer.set_more_tries(1)
      local ok, err = balancer.set_current_peer(list[i][1], list[i][2])
      if not ok then
        ngx.log(ngx.ERR, "set_current_peer: ", err)
        return ngx.exit(ngx.ERROR)
      end
    end
  }
"#;

/// Writes `nginx.conf` into `dir`; returns nginx's arguments.
pub(super) fn write_config(
    dir: &Path,
    log: &Path,
    config: &ProxyConfig,
) -> Result<Vec<String>, LabError> {
    let d = dir.display();
    let mut servers = String::new();
    for host in hosts(&config.routes) {
        let (listen, name) = match host {
            Some(h) => (format!("{INGRESS_PORT}"), h.to_string()),
            None => (format!("{INGRESS_PORT} default_server"), "_".to_string()),
        };
        servers.push_str(&format!(
            "  server {{\n    listen {listen};\n    server_name {name};\n"
        ));
        let mut seen = Vec::new();
        for r in config.routes.iter().filter(|r| r.host.as_deref() == host) {
            let location = if r.exact {
                format!("= {}", r.path)
            } else {
                r.path.clone()
            };
            if seen.contains(&location) {
                continue;
            }
            servers.push_str(&format!(
                "    location {location} {{\n      set $proxy_upstream_name \"{}\";\n      rewrite_by_lua_block {{ rollprobe_balancer.rewrite() }}\n      proxy_pass http://upstream_balancer;\n    }}\n",
                r.backend
            ));
            seen.push(location);
        }
        if !seen.iter().any(|l| l == "/") {
            servers.push_str("    location / { return 404; }\n");
        }
        servers.push_str("  }\n");
    }
    if !hosts(&config.routes).contains(&None) {
        servers.push_str(&format!(
            "  server {{\n    listen {INGRESS_PORT} default_server;\n    server_name _;\n    location / {{ return 404; }}\n  }}\n"
        ));
    }
    let conf = format!(
        r#"load_module {NDK_MODULE};
load_module {LUA_MODULE};
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 4096; }}
http {{
  log_format rollprobe 'rollprobe=nginx id=$http_x_request_id status=$status upstream="$upstream_addr" upstream_status="$upstream_status"';
  access_log {log} rollprobe;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  # ingress-nginx's defaults.
  proxy_connect_timeout 5s; proxy_send_timeout 60s; proxy_read_timeout 60s;
  proxy_next_upstream error timeout; proxy_next_upstream_tries 3;
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_set_header Host $host;
  lua_shared_dict backends 1m;
{LUA}
  upstream upstream_balancer {{
    server 0.0.0.1; # a placeholder: the Lua balancer sets the peer
    balancer_by_lua_block {{ rollprobe_balancer.balance() }}
    keepalive 320;
  }}
  server {{
    listen 127.0.0.1:{CONFIG_PORT};
    access_log off;
    location /configuration/backends {{
      content_by_lua_block {{
        ngx.req.read_body()
        ngx.shared.backends:set(ngx.var.arg_name, ngx.req.get_body_data() or "")
        ngx.status = 201
        ngx.say("ok")
      }}
    }}
  }}
{servers}}}
"#,
        log = log.display(),
    );
    let path = dir.join("nginx.conf");
    write_file(&path, &conf)?;
    Ok(vec![
        "-p".into(),
        d.to_string(),
        "-e".into(),
        format!("{d}/error.log"),
        "-c".into(),
        path.display().to_string(),
    ])
}

/// POSTs `backend`'s upstreams to the configuration port, from inside the pod.
pub(super) fn set_upstreams(
    netns: &str,
    backend: &str,
    upstreams: &[SocketAddrV4],
) -> Result<(), LabError> {
    let body = upstreams
        .iter()
        .map(|u| u.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    let request = format!(
        "POST /configuration/backends?name={backend} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let answer = in_netns(netns, move || {
        let addr = SocketAddr::from(([127, 0, 0, 1], CONFIG_PORT));
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        s.write_all(request.as_bytes())?;
        let mut answer = String::new();
        s.read_to_string(&mut answer)?;
        Ok(answer)
    })?;
    if answer.starts_with("HTTP/1.1 201") {
        Ok(())
    } else {
        Err(LabError::Command(format!(
            "nginx did not take the backends of {backend}: {}",
            answer.lines().next().unwrap_or("no answer")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::super::Route;
    use super::*;

    #[test]
    fn hosts_get_servers_and_unmatched_requests_the_404() {
        let route = |host: Option<&str>, path: &str, exact: bool, backend: &str| Route {
            host: host.map(str::to_string),
            path: path.into(),
            exact,
            backend: backend.into(),
        };
        let config = ProxyConfig {
            routes: vec![
                route(Some("shop.example"), "/api", false, "api-svc-80"),
                route(Some("shop.example"), "/health", true, "web-svc-80"),
            ],
            backends: vec!["api-svc-80".into(), "web-svc-80".into()],
        };
        let dir = std::env::temp_dir().join(format!("rollprobe-nginx-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write_config(&dir, &dir.join("access.log"), &config).unwrap();
        let conf = std::fs::read_to_string(dir.join("nginx.conf")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(conf.contains("server_name shop.example;"), "{conf}");
        assert!(conf.contains("location /api {\n      set $proxy_upstream_name \"api-svc-80\";"));
        assert!(conf.contains("location = /health {"));
        // The host's other paths and every other host get nginx's 404.
        assert_eq!(conf.matches("location / { return 404; }").count(), 2);
        assert!(conf.contains("listen 80 default_server;"));
        assert!(conf.contains("proxy_next_upstream error timeout; proxy_next_upstream_tries 3;"));
        assert!(conf.contains("listen 127.0.0.1:10246;"));
    }
}
