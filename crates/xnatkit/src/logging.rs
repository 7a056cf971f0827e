//! Logging setup: `tracing` events from every crate go to stderr through
//! a filter (`-v`, `XNATKIT_LOG`), except the server's start-up notices,
//! which the libraries emit as events (they must not print) and which are
//! shown through the [`Printer`] whatever the filter says: scripts wait for
//! the "listening on" line, and a generated admin password is shown once.

use tracing::field::{Field, Visit};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

use crate::printer::Printer;

pub fn init(verbose: u8, quiet: bool, serving: bool, printer: Printer) {
    let default = match verbose {
        0 if quiet => "error",
        // The server's access log is for the operator of `serve`; the demo's
        // in-process server keeps quiet.
        0 if serving => "warn,xnatkit=info,xnatkit_server::access=info",
        // rustls-platform-verifier logs each rejected certificate at error
        // level; the client's own one-line error already says it.
        0 => "warn,xnatkit=info,rustls_platform_verifier=off",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("XNATKIT_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    // Notices are shown by the notice layer below, never twice.
    let filter = match format!("{}=off", xnatkit_server::NOTICE_TARGET).parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    };
    let log = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .with_filter(filter);
    let notices = NoticeLayer { printer }.with_filter(
        Targets::new().with_target(xnatkit_server::NOTICE_TARGET, tracing::Level::INFO),
    );
    tracing_subscriber::registry()
        .with(log)
        .with(notices)
        .init();
}

/// Prints the message of each notice event as a plain line: warnings (the
/// generated password) always, information (listening addresses) unless
/// `--quiet`.
struct NoticeLayer {
    printer: Printer,
}

impl<S: tracing::Subscriber> Layer<S> for NoticeLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        if *event.metadata().level() <= tracing::Level::WARN {
            self.printer.warn(message.0);
        } else {
            self.printer.status(message.0);
        }
    }
}

struct Message(String);

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            value.clone_into(&mut self.0);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}
