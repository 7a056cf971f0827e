//! Listings for the web pages: counts per project and one page of a
//! project's sessions, filtered and sorted in SQL. A project of 10,000
//! sessions must never be read whole to draw 50 rows, so paging, the
//! filter and the order live in the query, not in Rust.

use std::collections::HashMap;

use super::{Store, int, text};

/// One row of a project's sessions table.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: String,
    pub label: String,
    pub subject_id: String,
    pub subject_label: String,
    pub date: String,
    pub modality: String,
    pub xsi_type: String,
    pub scan_count: i64,
}

/// The columns a sessions table may be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SessionSort {
    #[default]
    Label,
    Subject,
    Date,
    Modality,
}

impl SessionSort {
    /// The sort key as it appears in page links (`?sort=`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Label => "label",
            Self::Subject => "subject",
            Self::Date => "date",
            Self::Modality => "modality",
        }
    }

    /// Reads `?sort=`; unknown keys fall back to the label.
    pub fn parse(raw: &str) -> Self {
        match raw {
            "subject" => Self::Subject,
            "date" => Self::Date,
            "modality" => Self::Modality,
            _ => Self::Label,
        }
    }

    /// The SQL column: from this closed list only, never from the request.
    fn column(self) -> &'static str {
        match self {
            Self::Label => "v.label",
            Self::Subject => "v.subject_label",
            Self::Date => "v.date",
            Self::Modality => "v.modality",
        }
    }
}

/// What page of a project's sessions to read.
#[derive(Debug, Clone)]
pub struct SessionPageQuery<'a> {
    pub project: &'a str,
    /// Case-insensitive substring of the session or subject label.
    pub filter: &'a str,
    pub sort: SessionSort,
    pub descending: bool,
    pub limit: i64,
    pub offset: i64,
}

/// One page of sessions and how many match the filter in all.
#[derive(Debug, Clone)]
pub struct SessionPage {
    pub total: i64,
    pub rows: Vec<SessionRow>,
}

/// `%text%` for `LIKE … ESCAPE '\'`, lower-cased, with the pattern
/// characters of the text taken literally.
pub(super) fn like_pattern(filter: &str) -> String {
    let mut out = String::from("%");
    for c in filter.to_lowercase().chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// A project's sessions as it sees them (as the REST listing does): its
/// own, and those shared into it under their label there, with the
/// subject's label there when the subject is shared too.
pub(super) const SESSION_MATCH: &str = "FROM (\
     SELECT e.id, e.label, e.subject_id, s.label AS subject_label, e.date, e.modality, e.xsi_type \
     FROM experiments e JOIN subjects s ON s.id = e.subject_id WHERE e.project = $1 \
     UNION ALL \
     SELECT e.id, x.label, e.subject_id, COALESCE(ss.label, s.label) AS subject_label, e.date, e.modality, e.xsi_type \
     FROM experiment_shares x JOIN experiments e ON e.id = x.experiment_id \
     JOIN subjects s ON s.id = e.subject_id \
     LEFT JOIN subject_shares ss ON ss.subject_id = e.subject_id AND ss.project = $1 \
     WHERE x.project = $1\
     ) v WHERE (LOWER(v.label) LIKE $2 ESCAPE '\\' OR LOWER(v.subject_label) LIKE $3 ESCAPE '\\')";

impl Store {
    /// (subjects, sessions) per project, own and shared in, for projects
    /// that have any.
    pub async fn project_counts(&self) -> Result<HashMap<String, (i64, i64)>, sqlx::Error> {
        let mut out: HashMap<String, (i64, i64)> = HashMap::new();
        for (table, is_subjects) in [
            ("subjects", true),
            ("subject_shares", true),
            ("experiments", false),
            ("experiment_shares", false),
        ] {
            // `table` is one of the four names above.
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT project, CAST(COUNT(*) AS BIGINT) AS n FROM {table} GROUP BY project"
            )))
            .fetch_all(&self.pool)
            .await?;
            for row in &rows {
                let counts = out.entry(text(row, "project")?).or_default();
                let n = int(row, "n")?;
                if is_subjects {
                    counts.0 += n;
                } else {
                    counts.1 += n;
                }
            }
        }
        Ok(out)
    }

    /// One page of a project's sessions (own and shared in), filtered and
    /// sorted.
    pub async fn session_page(
        &self,
        query: &SessionPageQuery<'_>,
    ) -> Result<SessionPage, sqlx::Error> {
        let pattern = like_pattern(query.filter);
        let count_sql = format!("SELECT CAST(COUNT(*) AS BIGINT) AS n {SESSION_MATCH}");
        let total = sqlx::query(sqlx::AssertSqlSafe(count_sql))
            .bind(query.project)
            .bind(&pattern)
            .bind(&pattern)
            .fetch_one(&self.pool)
            .await?;
        let total = int(&total, "n")?;
        let direction = if query.descending { "DESC" } else { "ASC" };
        // The ORDER BY comes from `SessionSort::column` and a fixed word.
        let page_sql = format!(
            "SELECT v.id, v.label, v.subject_id, v.subject_label, v.date, v.modality, v.xsi_type, \
             (SELECT CAST(COUNT(*) AS BIGINT) FROM scans c WHERE c.experiment_id = v.id) AS scan_count \
             {SESSION_MATCH} ORDER BY {} {direction}, v.label {direction} LIMIT $4 OFFSET $5",
            query.sort.column()
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(page_sql))
            .bind(query.project)
            .bind(&pattern)
            .bind(&pattern)
            .bind(query.limit)
            .bind(query.offset)
            .fetch_all(&self.pool)
            .await?;
        let rows = rows
            .iter()
            .map(|row| {
                Ok(SessionRow {
                    id: text(row, "id")?,
                    label: text(row, "label")?,
                    subject_id: text(row, "subject_id")?,
                    subject_label: text(row, "subject_label")?,
                    date: text(row, "date")?,
                    modality: text(row, "modality")?,
                    xsi_type: text(row, "xsi_type")?,
                    scan_count: int(row, "scan_count")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(SessionPage { total, rows })
    }
}

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn filter_text_is_matched_literally() {
        assert_eq!(like_pattern("Ab"), "%ab%");
        assert_eq!(like_pattern("50%_x\\"), "%50\\%\\_x\\\\%");
    }
}
