//! Who may open an association: XNAT's receiver whitelist entries `AE`,
//! `IP` or `AE@IP`. An empty list admits everyone (a trusted network, as
//! XNAT's default receiver assumes).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// One allowed peer: a calling AE title, a host address, or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedPeer {
    /// Compared with the calling AE title, trimmed, case-sensitively (as
    /// DICOM compares AE titles).
    pub ae_title: Option<String>,
    pub host: Option<IpAddr>,
}

/// Why an allow-list entry was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{entry:?} is not an allowed DICOM peer: {reason}; use AE, IP or AE@IP (e.g. SCANNER1@10.0.0.5)"
)]
pub struct BadPeer {
    pub entry: String,
    pub reason: &'static str,
}

impl FromStr for AllowedPeer {
    type Err = BadPeer;

    fn from_str(entry: &str) -> Result<Self, Self::Err> {
        let bad = |reason| BadPeer {
            entry: entry.to_owned(),
            reason,
        };
        let ae_title = |text: &str| -> Result<String, BadPeer> {
            let text = text.trim();
            if text.is_empty() || text.len() > 16 || text.contains('\\') {
                return Err(bad("an AE title has 1 to 16 characters and no backslash"));
            }
            Ok(text.to_owned())
        };
        if let Some((ae, host)) = entry.rsplit_once('@') {
            let host = host
                .trim()
                .parse::<IpAddr>()
                .map_err(|_| bad("the part after @ is not an IP address"))?;
            return Ok(Self {
                ae_title: Some(ae_title(ae)?),
                host: Some(host),
            });
        }
        if let Ok(host) = entry.trim().parse::<IpAddr>() {
            return Ok(Self {
                ae_title: None,
                host: Some(host),
            });
        }
        Ok(Self {
            ae_title: Some(ae_title(entry)?),
            host: None,
        })
    }
}

impl fmt::Display for AllowedPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.ae_title, &self.host) {
            (Some(ae), Some(host)) => write!(f, "{ae}@{host}"),
            (Some(ae), None) => f.write_str(ae),
            (None, Some(host)) => write!(f, "{host}"),
            (None, None) => f.write_str("*"),
        }
    }
}

impl AllowedPeer {
    /// Does this entry admit `calling_ae` connecting from `host`?
    pub fn admits(&self, calling_ae: &str, host: IpAddr) -> bool {
        let ae_ok = self
            .ae_title
            .as_deref()
            .is_none_or(|ae| ae == calling_ae.trim());
        let host_ok = self
            .host
            .is_none_or(|allowed| allowed.to_canonical() == host.to_canonical());
        ae_ok && host_ok
    }
}

/// Is `calling_ae` from `host` admitted by `allowed` (empty: everyone)?
pub fn admitted(allowed: &[AllowedPeer], calling_ae: &str, host: IpAddr) -> bool {
    allowed.is_empty() || allowed.iter().any(|p| p.admits(calling_ae, host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_xnat_whitelist_forms() {
        let both: AllowedPeer = "SCANNER1@10.0.0.5".parse().unwrap();
        assert_eq!(both.to_string(), "SCANNER1@10.0.0.5");
        let ip: AllowedPeer = "::1".parse().unwrap();
        assert_eq!(ip.ae_title, None);
        let ae: AllowedPeer = "PACS".parse().unwrap();
        assert_eq!(ae.host, None);
        assert!("A@not-an-ip".parse::<AllowedPeer>().is_err());
        assert!("WAY_TOO_LONG_AE_TITLE".parse::<AllowedPeer>().is_err());
    }

    #[test]
    fn admits_only_matching_peers() {
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "10.1.1.1".parse().unwrap();
        let list: Vec<AllowedPeer> = ["SCANNER1@127.0.0.1", "PACS"]
            .iter()
            .map(|e| e.parse().unwrap())
            .collect();
        assert!(admitted(&list, "SCANNER1", local));
        assert!(!admitted(&list, "SCANNER1", other));
        assert!(admitted(&list, "PACS ", other));
        assert!(!admitted(&list, "STRANGER", local));
        assert!(admitted(&[], "ANYONE", other));
        // IPv4-mapped IPv6 is the same host.
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert!(admitted(&list, "SCANNER1", mapped));
    }
}
