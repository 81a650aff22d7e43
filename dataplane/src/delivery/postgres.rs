//! The Redshift destination, played by PostgreSQL: a batch is staged as an object in the S3
//! configuration (as Firehose does), then loaded with `COPY table (columns) FROM STDIN`.
//!
//! `ClusterJDBCURL` is `jdbc:redshift://host:port/db` or `jdbc:postgresql://host:port/db`.
//! Redshift `CopyOptions` map to PostgreSQL's COPY: `JSON 'auto'` (each record one or more
//! JSON objects, members matched to columns by lower-cased name), `CSV`, `DELIMITER 'c'`;
//! without options, Redshift's default of `|`-delimited text. Options that only concern S3
//! reads (`GZIP`, `MANIFEST`, `TIMEFORMAT`...) are ignored: the rows are sent uncompressed.

use std::time::Duration;

use bytes::Bytes;
use futures_util::SinkExt;
use serde::Deserialize;

/// `RedshiftDestinationConfiguration` (the members this engine reads).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RedshiftDestination {
    #[serde(rename = "RoleARN")]
    pub role_arn: Option<String>,
    #[serde(rename = "ClusterJDBCURL")]
    pub cluster_jdbc_url: Option<String>,
    pub copy_command: Option<CopyCommand>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub retry_options: Option<super::config::RetryOptions>,
    pub s3_configuration: Option<super::config::S3Destination>,
    pub processing_configuration: Option<super::config::ProcessingConfiguration>,
    pub s3_backup_mode: Option<String>,
    pub s3_backup_configuration: Option<super::config::S3Destination>,
}

impl RedshiftDestination {
    /// The source-record backup configuration, when `S3BackupMode` is `Enabled`.
    pub fn source_backup(&self) -> Option<&super::config::S3Destination> {
        (self.s3_backup_mode.as_deref() == Some("Enabled"))
            .then_some(self.s3_backup_configuration.as_ref())
            .flatten()
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CopyCommand {
    pub data_table_name: Option<String>,
    pub data_table_columns: Option<String>,
    pub copy_options: Option<String>,
}

/// Firehose retries a failed COPY for an hour by default.
pub const DEFAULT_RETRY_S: i64 = 3600;

/// (host, port, database) of a JDBC URL.
pub fn parse_jdbc(url: &str) -> Result<(String, u16, String), String> {
    let rest = url
        .strip_prefix("jdbc:redshift://")
        .or_else(|| url.strip_prefix("jdbc:postgresql://"))
        .ok_or_else(|| format!("{url} is not a jdbc:redshift:// or jdbc:postgresql:// URL"))?;
    let (authority, db) = rest
        .split_once('/')
        .ok_or_else(|| format!("{url} names no database"))?;
    let db = db.split(['?', ';']).next().unwrap_or_default();
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("{url} has an invalid port"))?,
        ),
        None => (authority, 5439),
    };
    if host.is_empty() || db.is_empty() {
        return Err(format!("{url} needs a host and a database"));
    }
    Ok((host.to_string(), port, db.to_string()))
}

/// A table or column name: `[A-Za-z_][A-Za-z0-9_$]*`, optionally `schema.`-qualified. Only
/// such names are accepted, so they can be put in the COPY statement as they are.
pub fn is_identifier(s: &str, qualified: bool) -> bool {
    let part = |p: &str| {
        let mut c = p.chars();
        c.next()
            .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
            && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == '$')
    };
    match s.split_once('.') {
        Some((a, b)) if qualified => part(a) && part(b),
        Some(_) => false,
        None => part(s),
    }
}

/// How rows are sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Format {
    Json,
    Csv(char),
    Text(char),
}

pub fn parse_options(options: Option<&str>) -> Format {
    let o = options.unwrap_or("").to_ascii_uppercase();
    let delimiter = o.find("DELIMITER").and_then(|i| {
        let rest = &options.unwrap_or("")[i + "DELIMITER".len()..];
        let start = rest.find('\'')?;
        rest[start + 1..].chars().next()
    });
    if o.contains("JSON") {
        Format::Json
    } else if o.contains("CSV") {
        Format::Csv(delimiter.unwrap_or(','))
    } else {
        Format::Text(delimiter.unwrap_or('|'))
    }
}

fn csv_field(v: &serde_json::Value) -> String {
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => quote(s),
        serde_json::Value::Bool(_) | serde_json::Value::Number(_) => v.to_string(),
        other => quote(&other.to_string()),
    }
}

/// CSV rows for `columns` from records holding JSON objects (`JSON 'auto'`).
pub fn json_rows(records: &[Bytes], columns: &[String]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for r in records {
        for value in serde_json::Deserializer::from_slice(r).into_iter::<serde_json::Value>() {
            let value = value.map_err(|e| format!("A record is not valid JSON: {e}"))?;
            let obj = value.as_object().ok_or("A record is not a JSON object.")?;
            let lower: std::collections::HashMap<String, &serde_json::Value> = obj
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect();
            let row: Vec<String> = columns
                .iter()
                .map(|c| {
                    lower
                        .get(&c.to_ascii_lowercase())
                        .map(|v| csv_field(v))
                        .unwrap_or_default()
                })
                .collect();
            out.extend_from_slice(row.join(",").as_bytes());
            out.push(b'\n');
        }
    }
    Ok(out)
}

/// Loads `records` into the table; returns the number of rows copied.
pub async fn copy(c: &RedshiftDestination, records: &[Bytes]) -> Result<u64, String> {
    let url = c.cluster_jdbc_url.clone().unwrap_or_default();
    let (host, port, db) = parse_jdbc(&url)?;
    let cmd = c.copy_command.clone().unwrap_or_default();
    let table = cmd.data_table_name.unwrap_or_default();
    let mut config = tokio_postgres::Config::new();
    config
        .host(&host)
        .port(port)
        .dbname(&db)
        .user(c.username.as_deref().unwrap_or_default())
        .password(c.password.as_deref().unwrap_or_default())
        .connect_timeout(Duration::from_secs(10));
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("Connecting to {host}:{port}/{db} failed: {e}"))?;
    let conn = tokio::spawn(async move {
        let _ = connection.await;
    });
    let result = async {
        let mut columns: Vec<String> = cmd
            .data_table_columns
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        let format = parse_options(cmd.copy_options.as_deref());
        if format == Format::Json && columns.is_empty() {
            let (schema, name) = table.split_once('.').unwrap_or(("public", &table));
            let rows = client
                .query(
                    "SELECT column_name::text FROM information_schema.columns \
                     WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
                    &[&schema.to_ascii_lowercase(), &name.to_ascii_lowercase()],
                )
                .await
                .map_err(|e| format!("Reading the columns of {table} failed: {e}"))?;
            columns = rows.iter().map(|r| r.get::<_, String>(0)).collect();
        }
        let column_list = if columns.is_empty() {
            String::new()
        } else {
            format!(" ({})", columns.join(", "))
        };
        let (body, with) = match format {
            Format::Json => (json_rows(records, &columns)?, "FORMAT csv".to_string()),
            Format::Csv(d) => (records.concat(), format!("FORMAT csv, DELIMITER '{d}'")),
            Format::Text(d) => (records.concat(), format!("FORMAT text, DELIMITER '{d}'")),
        };
        let statement = format!("COPY {table}{column_list} FROM STDIN WITH ({with})");
        let sink = client
            .copy_in::<_, Bytes>(statement.as_str())
            .await
            .map_err(|e| format!("{statement} failed: {e}"))?;
        futures_util::pin_mut!(sink);
        sink.send(Bytes::from(body))
            .await
            .map_err(|e| format!("{statement} failed: {e}"))?;
        sink.finish()
            .await
            .map_err(|e| format!("{statement} failed: {e}"))
    }
    .await;
    drop(client);
    let _ = conn.await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jdbc_urls_name_host_port_and_database() {
        assert_eq!(
            parse_jdbc("jdbc:postgresql://127.0.0.1:5432/analytics").unwrap(),
            ("127.0.0.1".into(), 5432, "analytics".into())
        );
        assert_eq!(
            parse_jdbc("jdbc:redshift://c.abc.us-east-1.redshift.amazonaws.com/dev?ssl=true")
                .unwrap()
                .1,
            5439
        );
        assert!(parse_jdbc("postgres://x/y").is_err());
    }

    #[test]
    fn copy_options_choose_the_row_format() {
        assert_eq!(parse_options(Some("JSON 'auto' GZIP")), Format::Json);
        assert_eq!(parse_options(Some("CSV DELIMITER ';'")), Format::Csv(';'));
        assert_eq!(parse_options(None), Format::Text('|'));
    }

    #[test]
    fn json_records_become_csv_rows_by_column_name() {
        let rows = json_rows(
            &[
                Bytes::from(r#"{"ID":1,"name":"a \"b\"","tags":[1]}"#),
                Bytes::from("{\"id\":2}\n{\"id\":3,\"name\":null}"),
            ],
            &["id".into(), "name".into(), "tags".into()],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(rows).unwrap(),
            "1,\"a \"\"b\"\"\",\"[1]\"\n2,,\n3,,\n"
        );
    }

    #[test]
    fn only_plain_identifiers_are_accepted() {
        assert!(is_identifier("public.events", true));
        assert!(is_identifier("events_2024", false));
        assert!(!is_identifier("events; DROP TABLE x", true));
        assert!(!is_identifier("a.b", false));
    }
}
