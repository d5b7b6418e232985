//! The `charter` binary. Today it only knows what is coming: the server, the demo and the
//! client subcommands land with the store, server and runtime issues.

use std::process::ExitCode;

fn main() -> ExitCode {
    let command = std::env::args().nth(1).unwrap_or_default();
    let message = match command.as_str() {
        "demo" | "serve" => format!(
            "charter {command}: not available yet. The engine (charter-core) is built; the \
             store, the HTTP server and the demo follow (see ARCHITECTURE.md)."
        ),
        _ => "usage: charter <serve|demo> (not available yet; see README.md)".to_owned(),
    };
    eprintln!("{message}");
    ExitCode::from(2)
}
