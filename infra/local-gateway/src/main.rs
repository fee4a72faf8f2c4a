//! `local-gateway --stack FILE [--listen ADDR]`: serves the API and drains the queues locally.

use std::collections::HashMap;
use std::net::SocketAddr;

use local_gateway::{GatewayOptions, StackDescription, DEFAULT_ADMIN_TOKEN, DEFAULT_INGEST_TOKEN};
use webhooks_shared::adapters::load_sdk_config;
use webhooks_shared::telemetry;

/// `value` as the console reads a fragment parameter (`URLSearchParams`): unreserved
/// characters as they are, every other byte percent-encoded.
fn fragment_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn usage() -> ! {
    eprintln!("usage: local-gateway --stack <stack.json from infra/local/stack.py up> [--listen 127.0.0.1:3000]");
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    telemetry::init();
    let mut stack_file = None;
    let mut listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 3000));
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--stack" => stack_file = Some(args.next().unwrap_or_else(|| usage())),
            "--listen" => {
                listen = args
                    .next()
                    .and_then(|a| a.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            _ => usage(),
        }
    }
    let Some(stack_file) = stack_file else {
        usage()
    };
    let stack = match std::fs::read_to_string(&stack_file)
        .map_err(|e| e.to_string())
        .and_then(|text| StackDescription::from_json(&text).map_err(|e| e.to_string()))
    {
        Ok(stack) => stack,
        Err(e) => {
            eprintln!("local-gateway: cannot read {stack_file}: {e}");
            std::process::exit(1)
        }
    };
    let token = |name: &str, default: &str| {
        std::env::var(name)
            .ok()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| default.to_owned())
    };
    let admin_token = token("WEBHOOKS_ADMIN_TOKEN", DEFAULT_ADMIN_TOKEN);
    let options = GatewayOptions {
        listen,
        admin_token: admin_token.clone(),
        ingest_token: token("WEBHOOKS_INGEST_TOKEN", DEFAULT_INGEST_TOKEN),
        overrides: HashMap::new(),
    };
    let sdk = load_sdk_config().await;
    let gateway = match local_gateway::start(&sdk, &stack, options).await {
        Ok(gateway) => gateway,
        Err(e) => {
            eprintln!("local-gateway: {e}");
            std::process::exit(1)
        }
    };
    eprintln!(
        "local-gateway: serving http://{} (GET /health); Ctrl-C stops",
        gateway.addr
    );
    // The console signs in with the token in the fragment, which never leaves the browser
    // (it is not sent to the server, nor in a Referer) and is taken off the address bar.
    eprintln!(
        "local-gateway: the console, signed in: http://{}/admin/webhooks#token={}",
        gateway.addr,
        fragment_value(&admin_token)
    );
    let _ = tokio::signal::ctrl_c().await;
    eprintln!("local-gateway: stopping");
    gateway.stop().await;
}
