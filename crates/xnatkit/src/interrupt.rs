//! The one Ctrl-C handler. Commands that can stop cleanly (transfers, the
//! uploader, the server) ask for a cancellation token here; the first
//! Ctrl-C cancels it (work in flight finishes, nothing new starts, `.part`
//! files and the workbook are left to resume from), a second one exits at
//! once with 130. Commands that never ask keep the default: Ctrl-C ends
//! them immediately, as nothing they do needs finishing.

use std::io::IsTerminal;

use tokio_util::sync::CancellationToken;

use crate::printer::Printer;

/// The exit status of a run stopped by Ctrl-C (128 + SIGINT), as shells use.
pub const EXIT_INTERRUPTED: u8 = 130;

/// What the first Ctrl-C does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstCtrlC {
    /// Cancel at once.
    Cancel,
    /// On a terminal, ask "[y/N]" first and keep working while asking
    /// (xnatuploader does this for long uploads); without one, cancel.
    ConfirmOnTerminal,
}

/// Installs the handler and returns the token it cancels. `stopping` is
/// the status line shown on the first Ctrl-C.
pub fn cancel_on_ctrl_c(
    printer: Printer,
    first: FirstCtrlC,
    stopping: &'static str,
) -> CancellationToken {
    let cancel = CancellationToken::new();
    let token = cancel.clone();
    tokio::spawn(async move {
        loop {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            if first == FirstCtrlC::Cancel || confirmed(printer).await {
                break;
            }
        }
        printer.warn(format!(
            "interrupted: {stopping}; press Ctrl-C again to stop now"
        ));
        token.cancel();
        if tokio::signal::ctrl_c().await.is_ok() {
            printer.warn("stopped; run the same command again to resume");
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        }
    });
    cancel
}

/// Asks on the terminal whether to stop; `true` without a terminal.
async fn confirmed(printer: Printer) -> bool {
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if !interactive {
        return true;
    }
    // Reading stdin blocks; the work keeps going on the async workers.
    tokio::task::spawn_blocking(move || {
        printer.ask("\nAre you sure that you want to quit? [y/N] ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer).is_ok() && answer.trim().eq_ignore_ascii_case("y")
    })
    .await
    .unwrap_or(true)
}
