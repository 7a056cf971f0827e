//! Site-wide accession IDs (XNAT's format): `{site}_{S|E}{NNNNN}`,
//! zero-padded to five digits and growing naturally beyond.

/// Which accession counter an ID belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccessionKind {
    Subject,
    Experiment,
}

impl AccessionKind {
    pub fn code(self) -> char {
        match self {
            Self::Subject => 'S',
            Self::Experiment => 'E',
        }
    }
}

/// The site prefix as XNAT derives it from the `siteId` preference: spaces,
/// quotes and `^` removed, `-` turned into `_`.
pub fn site_prefix(site_id: &str) -> String {
    site_id
        .chars()
        .filter(|c| !matches!(c, ' ' | '\'' | '"' | '^'))
        .map(|c| if c == '-' { '_' } else { c })
        .collect()
}

/// Formats accession number `n` of `kind` for `site_id`.
pub fn accession_id(site_id: &str, kind: AccessionKind, n: u64) -> String {
    format!("{}_{}{n:05}", site_prefix(site_id), kind.code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_xnat() {
        assert_eq!(
            accession_id("XNAT", AccessionKind::Subject, 1),
            "XNAT_S00001"
        );
        assert_eq!(
            accession_id("my-site", AccessionKind::Experiment, 123_456),
            "my_site_E123456"
        );
    }
}
