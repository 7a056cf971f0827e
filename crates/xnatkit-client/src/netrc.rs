//! A small `.netrc` reader.
//!
//! Written here rather than taken from a crate: the maintained Rust netrc
//! parsers either track another tool's release cycle and MSRV or are young
//! and lack the one rule XNAT users rely on, matching `machine host:port`
//! (xnatpy looks entries up by the URL's netloc *including* the port, and
//! xnatutils writes them that way). The grammar is tiny: whitespace-separated
//! tokens `machine NAME`, `default`, `login USER`, `password PW`,
//! `account X`, and `macdef NAME` followed by lines up to a blank line.

use std::path::{Path, PathBuf};

/// One `machine` (or `default`) entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetrcEntry {
    /// `None` for the `default` entry.
    pub machine: Option<String>,
    pub login: Option<String>,
    pub password: Option<String>,
}

/// A parsed `.netrc` file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Netrc {
    pub entries: Vec<NetrcEntry>,
}

impl Netrc {
    /// Parses the text of a `.netrc` file. Unknown tokens are skipped, as
    /// curl does, so one odd line does not hide the rest of the file.
    pub fn parse(text: &str) -> Self {
        let text = text.trim_start_matches('\u{feff}');
        let mut entries: Vec<NetrcEntry> = Vec::new();
        let mut lines = text.lines();
        let mut pending: Vec<String> = Vec::new();
        loop {
            let token = match pending.pop() {
                Some(t) => t,
                None => match lines.next() {
                    Some(line) => {
                        let line = line.trim();
                        if line.starts_with('#') {
                            continue;
                        }
                        pending = line.split_whitespace().rev().map(str::to_owned).collect();
                        continue;
                    }
                    None => break,
                },
            };
            let mut next_value = |pending: &mut Vec<String>| -> Option<String> {
                loop {
                    if let Some(t) = pending.pop() {
                        return Some(t);
                    }
                    let line = lines.next()?;
                    *pending = line.split_whitespace().rev().map(str::to_owned).collect();
                }
            };
            match token.as_str() {
                "machine" => {
                    let machine = next_value(&mut pending);
                    entries.push(NetrcEntry {
                        machine,
                        login: None,
                        password: None,
                    });
                }
                "default" => entries.push(NetrcEntry {
                    machine: None,
                    login: None,
                    password: None,
                }),
                "login" | "user" => {
                    let value = next_value(&mut pending);
                    if let Some(entry) = entries.last_mut() {
                        entry.login = value;
                    }
                }
                "password" => {
                    let value = next_value(&mut pending);
                    if let Some(entry) = entries.last_mut() {
                        entry.password = value;
                    }
                }
                "account" => {
                    let _ = next_value(&mut pending);
                }
                "macdef" => {
                    // A macro body runs to the next blank line.
                    pending.clear();
                    for line in lines.by_ref() {
                        if line.trim().is_empty() {
                            break;
                        }
                    }
                }
                _ => {}
            }
        }
        Self { entries }
    }

    /// Reads a `.netrc` file; a missing file is an empty one.
    pub fn read(path: &Path) -> std::io::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Self::parse(&text)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(err) => Err(err),
        }
    }

    /// The entry for `host` with `port`: `machine host:port` first, then
    /// `machine host`, then `default`. When `user` is given only entries for
    /// that login (or without a login) qualify.
    pub fn find(&self, host: &str, port: Option<u16>, user: Option<&str>) -> Option<&NetrcEntry> {
        let with_port = port.map(|p| format!("{host}:{p}"));
        let user_ok = |e: &&NetrcEntry| match (user, e.login.as_deref()) {
            (Some(u), Some(l)) => u == l,
            _ => true,
        };
        let by_machine = |name: &str| {
            self.entries.iter().filter(user_ok).find(|e| {
                e.machine
                    .as_deref()
                    .is_some_and(|m| m.eq_ignore_ascii_case(name))
            })
        };
        with_port
            .as_deref()
            .and_then(by_machine)
            .or_else(|| by_machine(host))
            .or_else(|| {
                self.entries
                    .iter()
                    .filter(user_ok)
                    .find(|e| e.machine.is_none())
            })
    }
}

/// Where the netrc file is: `$NETRC`, else `~/.netrc`.
pub fn default_netrc_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("NETRC") {
        return Some(PathBuf::from(path));
    }
    directories::BaseDirs::new().map(|d| d.home_dir().join(".netrc"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_entry_wins_over_host_and_default() {
        let netrc = Netrc::parse(
            "machine xnat.example.org login a password pa\n\
             # comment\n\
             machine xnat.example.org:8080\n  login b\n  password pb\n\
             default login c password pc\n",
        );
        let e = netrc.find("xnat.example.org", Some(8080), None).unwrap();
        assert_eq!(e.login.as_deref(), Some("b"));
        let e = netrc.find("xnat.example.org", Some(443), None).unwrap();
        assert_eq!(e.login.as_deref(), Some("a"));
        let e = netrc.find("other", None, None).unwrap();
        assert_eq!(e.login.as_deref(), Some("c"));
    }

    #[test]
    fn user_filter_and_macdef() {
        let netrc = Netrc::parse(
            "macdef init\ncd /tmp\n\nmachine h login x password 1\nmachine h login y password 2\n",
        );
        assert_eq!(
            netrc
                .find("h", None, Some("y"))
                .unwrap()
                .password
                .as_deref(),
            Some("2")
        );
        assert!(netrc.find("nope", None, None).is_none());
    }
}
