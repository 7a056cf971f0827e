//! A flood of bad credentials against the real `xnatkit serve` process:
//! hundreds of parallel wrong passwords, unknown users and wrong alias-token
//! secrets. Password hashing is bounded, so the server's peak memory
//! (VmHWM from /proc) stays far below what one argon2 run per request would
//! take, refused callers beyond the bound get 503 + Retry-After, and a good
//! login still answers afterwards, and no credential reaches the server's
//! log.

use std::io::{Read, Write};

use base64::Engine;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::support::{TestServer, runtime};

/// Peak resident memory the server may reach during the flood. Unbounded
/// hashing took it to gigabytes; bounded it stays near its idle size plus
/// a few argon2 buffers (~19 MiB each).
const PEAK_RSS_LIMIT_KB: u64 = 400 * 1024;

const BAD_PASSWORDS: usize = 150;
const UNKNOWN_USERS: usize = 50;
const BAD_TOKEN_SECRETS: usize = 200;

/// One HTTP/1.1 request on its own connection: (status, head, body).
fn request(address: SocketAddr, path: &str, user: &str, password: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(600)))
        .unwrap();
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Basic {credentials}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

/// The server process: the one whose command line names its data folder.
fn server_pid(server: &TestServer) -> u32 {
    let data = server.dir.path().join("data");
    let needle = data.to_string_lossy().into_owned();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(" serve ") && cmdline.contains(&needle) {
            return pid;
        }
    }
    panic!("no xnatkit serve process for {needle}");
}

/// A `VmXXX:` value of /proc/PID/status, in kB.
fn memory_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} missing from /proc/{pid}/status"))
}

#[test]
fn bad_credential_flood_keeps_memory_flat() {
    let server = TestServer::start();
    let pid = server_pid(&server);
    let address = server.address;
    let victim = runtime().block_on(server.create_user());
    let (status, _, token) = request(
        address,
        "/data/services/tokens/issue",
        "admin",
        &server.admin_password,
    );
    assert_eq!(status, 200, "{token}");
    let token: serde_json::Value = serde_json::from_str(&token).unwrap();
    let alias = token["alias"].as_str().unwrap().to_owned();
    let secret = token["secret"].as_str().unwrap().to_owned();

    let mut floods = Vec::new();
    for n in 0..(BAD_PASSWORDS + UNKNOWN_USERS + BAD_TOKEN_SECRETS) {
        let (user, password) = if n < BAD_PASSWORDS {
            (victim.0.clone(), format!("wrong-{n}"))
        } else if n < BAD_PASSWORDS + UNKNOWN_USERS {
            (format!("nobody{n}"), format!("wrong-{n}"))
        } else {
            (alias.clone(), format!("{n:0>64}"))
        };
        floods.push(std::thread::spawn(move || {
            request(address, "/data/auth", &user, &password)
        }));
    }
    let (mut refused, mut busy) = (0, 0);
    for flood in floods {
        let (status, head, body) = flood.join().unwrap();
        match status {
            401 => refused += 1,
            503 => {
                busy += 1;
                assert!(
                    head.to_ascii_lowercase().contains("\r\nretry-after: "),
                    "503 without Retry-After: {head}"
                );
            }
            other => panic!("bad credentials answered {other}: {body}"),
        }
    }
    assert_eq!(
        refused + busy,
        BAD_PASSWORDS + UNKNOWN_USERS + BAD_TOKEN_SECRETS
    );

    let peak_kb = memory_kb(pid, "VmHWM:");
    let now_kb = memory_kb(pid, "VmRSS:");
    eprintln!(
        "flood: {refused} refused, {busy} busy; server VmHWM {} MiB, VmRSS {} MiB",
        peak_kb / 1024,
        now_kb / 1024
    );
    assert!(
        peak_kb < PEAK_RSS_LIMIT_KB,
        "server peak memory {} MiB during the flood (limit {} MiB)",
        peak_kb / 1024,
        PEAK_RSS_LIMIT_KB / 1024
    );
    // The server still serves a good login after the flood.
    let (status, _, body) = request(address, "/data/auth", "admin", &server.admin_password);
    assert_eq!(status, 200, "{body}");

    // Credentials never reach the server's log (it logs every request):
    // not the good password, not the guesses, not the token's secret, not
    // even when the secret is part of the path.
    let invalidate = format!("/data/services/tokens/invalidate/{alias}/{secret}");
    // (The flood locked the token, so the answer is a refusal; the path
    // with the secret is what matters here.)
    request(address, &invalidate, "admin", &server.admin_password);
    let log = server.log();
    assert!(
        log.contains("/data/auth 401"),
        "the access log records refused logins: {log}"
    );
    assert!(
        log.contains(&format!("/data/services/tokens/invalidate/{alias}/* ")),
        "the access log records the invalidation with the secret redacted"
    );
    for credential in [
        server.admin_password.as_str(),
        victim.1.as_str(),
        secret.as_str(),
        "wrong-1",
        &format!("{:0>64}", BAD_PASSWORDS + UNKNOWN_USERS),
    ] {
        assert!(
            !log.contains(credential),
            "the server log holds a credential ({} chars)",
            credential.len()
        );
    }
}
