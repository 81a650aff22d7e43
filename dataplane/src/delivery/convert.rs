//! Record format conversion: JSON records to Apache Parquet, as Firehose's
//! `DataFormatConversionConfiguration` does.
//!
//! Firehose reads the schema from an AWS Glue table (`SchemaConfiguration`: `DatabaseName`,
//! `TableName`). Tributary has no Glue Data Catalog; it reads the table from a directory given
//! by `--glue-catalog DIR`: `DIR/<DatabaseName>/<TableName>.json` holds the table as
//! `aws glue get-table --database-name DB --name TABLE` prints it (`{"Table": {...}}`, or the
//! bare `Table` object). Its `StorageDescriptor.Columns` (`Name`, `Type` in Hive type syntax)
//! are the Parquet file's columns. The table is read when the delivery stream is created or
//! updated (to check it) and at each delivery (`VersionId` `LATEST`), so a changed file applies
//! to the next object.
//!
//! Each record holds one or more JSON objects (concatenated, optionally separated by
//! whitespace); each object is a row. A record that is not JSON objects, or whose value for a
//! column cannot be read as the column's type, fails conversion as a whole and goes to the
//! error output (`format-conversion-failed`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use parquet::basic::{Compression, ConvertedType, Repetition, Type as Physical};
use parquet::column::writer::ColumnWriter;
use parquet::data_type::{ByteArray, FixedLenByteArray};
use parquet::file::properties::{WriterProperties, WriterVersion};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;
use serde::Deserialize;
use serde_json::Value;

/// A column's type, from Glue's (Hive's) type names.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ColumnType {
    String,
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    Float,
    Double,
    Boolean,
    /// Milliseconds since the epoch, UTC.
    Timestamp,
    /// Days since the epoch.
    Date,
    Binary,
    /// `decimal(precision, scale)`: an unscaled integer; precision 1–38.
    Decimal(u8, u8),
}

impl ColumnType {
    /// Parses a Hive type name; complex types (`array<...>`, `map<...>`, `struct<...>`) are
    /// not supported yet.
    pub fn parse(t: &str) -> Result<ColumnType, String> {
        let lower = t.trim().to_ascii_lowercase();
        let base = lower.split('(').next().unwrap_or("").trim();
        if base == "decimal" {
            // Hive's `decimal` alone is decimal(10,0).
            let args: Vec<&str> = lower
                .split_once('(')
                .map(|(_, a)| a.trim_end_matches(')').split(',').map(str::trim).collect())
                .unwrap_or_default();
            let (p, s) = match args.as_slice() {
                [] => (10, 0),
                [p] => (p.parse().unwrap_or(0), 0),
                [p, s] => (p.parse().unwrap_or(0), s.parse().unwrap_or(u8::MAX)),
                _ => (0, 0),
            };
            if !(1..=38).contains(&p) || s > p {
                return Err(format!(
                    "Column type {t} is not a valid decimal: precision must be 1-38 and scale at most the precision."
                ));
            }
            return Ok(ColumnType::Decimal(p, s));
        }
        Ok(match base {
            "string" | "varchar" | "char" => ColumnType::String,
            "tinyint" => ColumnType::TinyInt,
            "smallint" => ColumnType::SmallInt,
            "int" | "integer" => ColumnType::Int,
            "bigint" => ColumnType::BigInt,
            "float" => ColumnType::Float,
            "double" => ColumnType::Double,
            "boolean" => ColumnType::Boolean,
            "timestamp" => ColumnType::Timestamp,
            "date" => ColumnType::Date,
            "binary" => ColumnType::Binary,
            _ => {
                return Err(format!(
                    "Column type {t} is not supported for format conversion by this Tributary version; supported: string, varchar, char, tinyint, smallint, int, bigint, float, double, boolean, timestamp, date, binary, decimal."
                ))
            }
        })
    }
}

/// A column's shape: a primitive, or Hive's `array<T>`, `map<K,V>` and `struct<a:T,...>`.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    Leaf(ColumnType),
    List(Box<Shape>),
    Map(ColumnType, Box<Shape>),
    Struct(Vec<(String, Shape)>),
}

impl Shape {
    pub fn parse(t: &str) -> Result<Shape, String> {
        let (shape, rest) = Self::parse_prefix(t.trim())?;
        if !rest.trim().is_empty() {
            return Err(format!("Column type {t} is not a valid Hive type."));
        }
        Ok(shape)
    }

    /// Parses one type at the start of `t`; returns it and the rest.
    fn parse_prefix(t: &str) -> Result<(Shape, &str), String> {
        let t = t.trim_start();
        let lower = t.to_ascii_lowercase();
        let open =
            |kw: &str| lower.starts_with(kw) && lower[kw.len()..].trim_start().starts_with('<');
        let after_open = |kw: &str| {
            let rest = t[kw.len()..].trim_start();
            rest[1..].trim_start()
        };
        fn close<'a>(t: &str, rest: &'a str) -> Result<&'a str, String> {
            rest.trim_start()
                .strip_prefix('>')
                .ok_or_else(|| format!("Column type {t} is not a valid Hive type."))
        }
        if open("array") {
            let (elem, rest) = Self::parse_prefix(after_open("array"))?;
            return Ok((Shape::List(Box::new(elem)), close(t, rest)?));
        }
        if open("map") {
            let (key, rest) = Self::parse_prefix(after_open("map"))?;
            let Shape::Leaf(key) = key else {
                return Err(format!(
                    "Column type {t}: map keys must be primitive types."
                ));
            };
            let rest = rest
                .trim_start()
                .strip_prefix(',')
                .ok_or_else(|| format!("Column type {t} is not a valid Hive type."))?;
            let (value, rest) = Self::parse_prefix(rest)?;
            return Ok((Shape::Map(key, Box::new(value)), close(t, rest)?));
        }
        if open("struct") {
            let mut rest = after_open("struct");
            let mut fields = Vec::new();
            loop {
                let (name, r) = rest
                    .split_once(':')
                    .ok_or_else(|| format!("Column type {t} is not a valid Hive type."))?;
                let (shape, r) = Self::parse_prefix(r)?;
                fields.push((name.trim().to_string(), shape));
                let r = r.trim_start();
                if let Some(r) = r.strip_prefix(',') {
                    rest = r;
                } else {
                    return Ok((Shape::Struct(fields), close(t, r)?));
                }
            }
        }
        // A primitive, possibly with arguments: `decimal(10,2)`, `varchar(20)`.
        let mut end = t
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(t.len());
        if t[end..].trim_start().starts_with('(') {
            end = t.find(')').map(|i| i + 1).unwrap_or(t.len());
        }
        Ok((Shape::Leaf(ColumnType::parse(&t[..end])?), &t[end..]))
    }

    fn leaf_count(&self) -> usize {
        match self {
            Shape::Leaf(_) => 1,
            Shape::List(e) => e.leaf_count(),
            Shape::Map(_, v) => 1 + v.leaf_count(),
            Shape::Struct(f) => f.iter().map(|(_, s)| s.leaf_count()).sum(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub shape: Shape,
}

/// One leaf column's values (non-null only) with their definition and repetition levels.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Leaf {
    pub values: Vec<Cell>,
    pub defs: Vec<i16>,
    pub reps: Vec<i16>,
}

impl Leaf {
    fn push(&mut self, value: Option<Cell>, def: i16, rep: i16) {
        if let Some(v) = value {
            self.values.push(v);
        }
        self.defs.push(def);
        self.reps.push(rep);
    }
}

/// Rows shredded into their leaf columns (Dremel encoding), ready to write.
#[derive(Debug, Clone, Default)]
pub struct Shredded {
    pub rows: usize,
    pub leaves: Vec<Leaf>,
}

impl Shredded {
    pub fn append(&mut self, other: Shredded) {
        if self.leaves.is_empty() {
            *self = other;
            return;
        }
        self.rows += other.rows;
        for (a, b) in self.leaves.iter_mut().zip(other.leaves) {
            a.values.extend(b.values);
            a.defs.extend(b.defs);
            a.reps.extend(b.reps);
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GlueColumn {
    name: String,
    #[serde(rename = "Type")]
    ty: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StorageDescriptor {
    columns: Vec<GlueColumn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GlueTable {
    storage_descriptor: StorageDescriptor,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetTableOutput {
    table: GlueTable,
}

/// Reads `<catalog>/<database>/<table>.json`.
pub fn load_table(
    catalog: Option<&Path>,
    database: &str,
    table: &str,
) -> Result<Vec<Column>, String> {
    let Some(dir) = catalog else {
        return Err(format!(
            "Table {table} in database {database} cannot be read: no Glue catalog directory is configured (--glue-catalog)."
        ));
    };
    let plain = |s: &str| !s.is_empty() && !s.contains(['/', '\\']) && s != "." && s != "..";
    if !plain(database) || !plain(table) {
        return Err(format!("Table {table} in database {database} not found."));
    }
    let path = dir.join(database).join(format!("{table}.json"));
    let raw = std::fs::read(&path)
        .map_err(|_| format!("Table {table} in database {database} not found."))?;
    let t: GlueTable = serde_json::from_slice::<GetTableOutput>(&raw)
        .map(|o| o.table)
        .or_else(|_| serde_json::from_slice::<GlueTable>(&raw))
        .map_err(|e| {
            format!("Table {table} in database {database} has no readable StorageDescriptor.Columns: {e}")
        })?;
    if t.storage_descriptor.columns.is_empty() {
        return Err(format!(
            "Table {table} in database {database} has no columns."
        ));
    }
    t.storage_descriptor
        .columns
        .into_iter()
        .map(|c| {
            Ok(Column {
                shape: Shape::parse(&c.ty)?,
                name: c.name,
            })
        })
        .collect()
}

/// `DataFormatConversionConfiguration` members this engine reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConversionConfig {
    pub enabled: Option<bool>,
    pub schema_configuration: Option<SchemaConfiguration>,
    pub input_format_configuration: Option<InputFormat>,
    pub output_format_configuration: Option<OutputFormat>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SchemaConfiguration {
    #[serde(rename = "RoleARN")]
    pub role_arn: Option<String>,
    pub catalog_id: Option<String>,
    pub database_name: Option<String>,
    pub table_name: Option<String>,
    pub region: Option<String>,
    pub version_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InputFormat {
    pub deserializer: Option<Deserializer>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Deserializer {
    #[serde(rename = "OpenXJsonSerDe")]
    pub openx: Option<OpenXJsonSerDe>,
    #[serde(rename = "HiveJsonSerDe")]
    pub hive: Option<HiveJsonSerDe>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OpenXJsonSerDe {
    pub convert_dots_in_json_keys_to_underscores: Option<bool>,
    pub case_insensitive: Option<bool>,
    pub column_to_json_key_mappings: Option<HashMap<String, String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HiveJsonSerDe {
    pub timestamp_formats: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OutputFormat {
    pub serializer: Option<Serializer>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Serializer {
    #[serde(rename = "ParquetSerDe")]
    pub parquet: Option<ParquetSerDe>,
    #[serde(rename = "OrcSerDe")]
    pub orc: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ParquetSerDe {
    pub block_size_bytes: Option<i64>,
    pub page_size_bytes: Option<i64>,
    pub compression: Option<String>,
    pub enable_dictionary_compression: Option<bool>,
    pub max_padding_bytes: Option<i64>,
    pub writer_version: Option<String>,
}

impl ConversionConfig {
    pub fn parse(v: Option<&Value>) -> Option<ConversionConfig> {
        let c: ConversionConfig = serde_json::from_value(v?.clone()).ok()?;
        // `Enabled` defaults to true: a configuration is switched off only explicitly.
        c.enabled.unwrap_or(true).then_some(c)
    }

    pub fn table(&self) -> (String, String) {
        let s = self.schema_configuration.clone().unwrap_or_default();
        (
            s.database_name.unwrap_or_default(),
            s.table_name.unwrap_or_default(),
        )
    }
}

/// A ready converter: the schema and the SerDe options.
pub struct Converter {
    columns: Vec<Column>,
    /// Column index by the JSON key that feeds it (already normalised).
    keys: HashMap<String, usize>,
    case_insensitive: bool,
    dots_to_underscores: bool,
    timestamp_formats: Vec<String>,
    parquet: ParquetSerDe,
}

/// One converted value.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Bytes(Vec<u8>),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    /// An unscaled decimal.
    I128(i128),
}

impl Converter {
    pub fn new(config: &ConversionConfig, columns: Vec<Column>) -> Converter {
        let de = config
            .input_format_configuration
            .clone()
            .and_then(|i| i.deserializer)
            .unwrap_or_default();
        let openx = de.openx.clone();
        let hive = de.hive.clone();
        // Hive's JSON SerDe matches keys case-insensitively; OpenX does by default.
        let case_insensitive = match &openx {
            Some(o) => o.case_insensitive.unwrap_or(true),
            None => true,
        };
        let dots_to_underscores = openx
            .as_ref()
            .and_then(|o| o.convert_dots_in_json_keys_to_underscores)
            .unwrap_or(false);
        let mappings = openx
            .as_ref()
            .and_then(|o| o.column_to_json_key_mappings.clone())
            .unwrap_or_default();
        let norm = |s: &str| {
            if case_insensitive {
                s.to_lowercase()
            } else {
                s.to_string()
            }
        };
        let mut keys = HashMap::new();
        for (i, c) in columns.iter().enumerate() {
            let key = mappings
                .iter()
                .find(|(col, _)| norm(col) == norm(&c.name))
                .map(|(_, key)| key.clone())
                .unwrap_or_else(|| c.name.clone());
            keys.entry(norm(&key)).or_insert(i);
        }
        Converter {
            columns,
            keys,
            case_insensitive,
            dots_to_underscores,
            timestamp_formats: hive.and_then(|h| h.timestamp_formats).unwrap_or_default(),
            parquet: config
                .output_format_configuration
                .clone()
                .and_then(|o| o.serializer)
                .and_then(|s| s.parquet)
                .unwrap_or_default(),
        }
    }

    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The rows of one record, shredded, or why it cannot be converted.
    pub fn rows(&self, data: &[u8]) -> Result<Shredded, String> {
        let leaves: usize = self.columns.iter().map(|c| c.shape.leaf_count()).sum();
        let mut out = Shredded {
            rows: 0,
            leaves: vec![Leaf::default(); leaves],
        };
        for value in serde_json::Deserializer::from_slice(data).into_iter::<Value>() {
            let value = value.map_err(|e| format!("The record is not valid JSON: {e}"))?;
            let Value::Object(map) = value else {
                return Err(
                    "The record is not a JSON object (arrays and scalars are not valid input)."
                        .into(),
                );
            };
            let mut by_column: Vec<Option<Value>> = vec![None; self.columns.len()];
            for (k, v) in map {
                let mut key = if self.dots_to_underscores {
                    k.replace('.', "_")
                } else {
                    k
                };
                if self.case_insensitive {
                    key = key.to_lowercase();
                }
                if let Some(&i) = self.keys.get(&key) {
                    by_column[i] = Some(v);
                }
            }
            let mut offset = 0;
            for (c, v) in self.columns.iter().zip(&by_column) {
                let n = c.shape.leaf_count();
                self.shred(
                    &c.shape,
                    v.as_ref(),
                    0,
                    0,
                    0,
                    &mut out.leaves[offset..offset + n],
                )
                .map_err(|e| format!("Column {}: {e}", c.name))?;
                offset += n;
            }
            out.rows += 1;
        }
        if out.rows == 0 {
            return Err("The record holds no JSON object.".into());
        }
        Ok(out)
    }

    /// Shreds `v` of shape `shape` into `leaves` (the shape's leaf columns): `def` is the
    /// definition level reached by the enclosing fields, `rep` the repetition level of this
    /// value, `depth` the number of repeated fields enclosing it.
    fn shred(
        &self,
        shape: &Shape,
        v: Option<&Value>,
        def: i16,
        rep: i16,
        depth: i16,
        leaves: &mut [Leaf],
    ) -> Result<(), String> {
        let v = v.filter(|v| !v.is_null());
        let Some(v) = v else {
            for l in leaves.iter_mut() {
                l.push(None, def, rep);
            }
            return Ok(());
        };
        match shape {
            Shape::Leaf(ty) => leaves[0].push(Some(self.cell(*ty, v)?), def + 1, rep),
            Shape::Struct(fields) => {
                let Value::Object(m) = v else {
                    return Err(format!("cannot read {v} as a struct"));
                };
                let mut offset = 0;
                for (name, s) in fields {
                    let n = s.leaf_count();
                    let member = m.get(name).or_else(|| {
                        self.case_insensitive
                            .then(|| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
                            .flatten()
                            .map(|(_, v)| v)
                    });
                    self.shred(
                        s,
                        member,
                        def + 1,
                        rep,
                        depth,
                        &mut leaves[offset..offset + n],
                    )?;
                    offset += n;
                }
            }
            Shape::List(elem) => {
                let Value::Array(items) = v else {
                    return Err(format!("cannot read {v} as an array"));
                };
                if items.is_empty() {
                    for l in leaves.iter_mut() {
                        l.push(None, def + 1, rep);
                    }
                }
                for (i, item) in items.iter().enumerate() {
                    let r = if i == 0 { rep } else { depth + 1 };
                    self.shred(elem, Some(item), def + 2, r, depth + 1, leaves)?;
                }
            }
            Shape::Map(key, value) => {
                let Value::Object(m) = v else {
                    return Err(format!("cannot read {v} as a map"));
                };
                if m.is_empty() {
                    for l in leaves.iter_mut() {
                        l.push(None, def + 1, rep);
                    }
                }
                for (i, (k, item)) in m.iter().enumerate() {
                    let r = if i == 0 { rep } else { depth + 1 };
                    let k = self.cell(*key, &Value::String(k.clone()))?;
                    leaves[0].push(Some(k), def + 2, r);
                    self.shred(value, Some(item), def + 2, r, depth + 1, &mut leaves[1..])?;
                }
            }
        }
        Ok(())
    }

    fn cell(&self, ty: ColumnType, v: &Value) -> Result<Cell, String> {
        let bad = || format!("cannot read {v} as {ty:?}");
        let int = |lo: i64, hi: i64| -> Result<i64, String> {
            let n = match v {
                Value::Number(n) => n
                    .as_i64()
                    .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            }
            .ok_or_else(bad)?;
            (lo..=hi).contains(&n).then_some(n).ok_or_else(bad)
        };
        let float = || -> Result<f64, String> {
            match v {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            }
            .ok_or_else(bad)
        };
        Ok(match ty {
            ColumnType::String => Cell::Bytes(match v {
                Value::String(s) => s.clone().into_bytes(),
                // Nested values and numbers are kept as their JSON text.
                other => other.to_string().into_bytes(),
            }),
            ColumnType::Binary => match v {
                Value::String(s) => Cell::Bytes(s.clone().into_bytes()),
                _ => return Err(bad()),
            },
            ColumnType::TinyInt => Cell::I32(int(i8::MIN as i64, i8::MAX as i64)? as i32),
            ColumnType::SmallInt => Cell::I32(int(i16::MIN as i64, i16::MAX as i64)? as i32),
            ColumnType::Int => Cell::I32(int(i32::MIN as i64, i32::MAX as i64)? as i32),
            ColumnType::BigInt => Cell::I64(int(i64::MIN, i64::MAX)?),
            ColumnType::Float => Cell::F32(float()? as f32),
            ColumnType::Double => Cell::F64(float()?),
            ColumnType::Boolean => Cell::Bool(match v {
                Value::Bool(b) => *b,
                Value::String(s) if s.eq_ignore_ascii_case("true") => true,
                Value::String(s) if s.eq_ignore_ascii_case("false") => false,
                _ => return Err(bad()),
            }),
            ColumnType::Timestamp => {
                Cell::I64(timestamp_ms(v, &self.timestamp_formats).ok_or_else(bad)?)
            }
            ColumnType::Decimal(p, scale) => {
                let text = match v {
                    Value::Number(n) => n.to_string(),
                    Value::String(s) => s.trim().to_string(),
                    _ => return Err(bad()),
                };
                let unscaled = parse_decimal(&text, scale).ok_or_else(bad)?;
                if unscaled.unsigned_abs() >= 10u128.pow(p as u32) {
                    return Err(bad());
                }
                if p <= 18 {
                    Cell::I64(unscaled as i64)
                } else {
                    Cell::I128(unscaled)
                }
            }
            ColumnType::Date => {
                let Value::String(s) = v else {
                    return Err(bad());
                };
                let d = chrono::NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d")
                    .map_err(|_| bad())?;
                let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
                Cell::I32((d - epoch).num_days() as i32)
            }
        })
    }

    /// Writes shredded rows as one Parquet file (one row group).
    pub fn write(&self, rows: &Shredded) -> Result<Vec<u8>, String> {
        let e = |e: parquet::errors::ParquetError| e.to_string();
        let fields = self
            .columns
            .iter()
            .map(|c| parquet_type(&c.name, &c.shape, Repetition::OPTIONAL))
            .collect::<Result<Vec<_>, _>>()
            .map_err(e)?;
        let schema = Arc::new(
            Type::group_type_builder("schema")
                .with_fields(fields)
                .build()
                .map_err(e)?,
        );
        let p = &self.parquet;
        let compression = match p.compression.as_deref() {
            Some("UNCOMPRESSED") => Compression::UNCOMPRESSED,
            Some("GZIP") => Compression::GZIP(Default::default()),
            _ => Compression::SNAPPY,
        };
        let mut props = WriterProperties::builder()
            .set_compression(compression)
            .set_dictionary_enabled(p.enable_dictionary_compression.unwrap_or(false))
            .set_writer_version(match p.writer_version.as_deref() {
                Some("V2") => WriterVersion::PARQUET_2_0,
                _ => WriterVersion::PARQUET_1_0,
            })
            .set_created_by("Tributary (Firehose record format conversion)".into());
        if let Some(page) = p.page_size_bytes {
            props = props.set_data_page_size_limit(page.max(1) as usize);
        }
        let mut writer =
            SerializedFileWriter::new(Vec::new(), schema, Arc::new(props.build())).map_err(e)?;
        let mut rg = writer.next_row_group().map_err(e)?;
        let mut i = 0;
        while let Some(mut col) = rg.next_column().map_err(e)? {
            let Some(leaf) = rows.leaves.get(i) else {
                return Err("the rows do not match the schema".into());
            };
            let cells = leaf.values.iter();
            let defs = &leaf.defs[..];
            let reps = (leaf.reps.iter().any(|r| *r > 0) || leaf_repeated(&self.columns, i))
                .then_some(&leaf.reps[..]);
            match col.untyped() {
                ColumnWriter::ByteArrayColumnWriter(w) => {
                    let v: Vec<ByteArray> = cells
                        .filter_map(|c| match c {
                            Cell::Bytes(b) => Some(ByteArray::from(b.clone())),
                            _ => None,
                        })
                        .collect();
                    w.write_batch(&v, Some(defs), reps).map_err(e)?;
                }
                ColumnWriter::Int32ColumnWriter(w) => {
                    let v: Vec<i32> = cells
                        .filter_map(|c| match c {
                            Cell::I32(x) => Some(*x),
                            _ => None,
                        })
                        .collect();
                    w.write_batch(&v, Some(defs), reps).map_err(e)?;
                }
                ColumnWriter::Int64ColumnWriter(w) => {
                    let v: Vec<i64> = cells
                        .filter_map(|c| match c {
                            Cell::I64(x) => Some(*x),
                            _ => None,
                        })
                        .collect();
                    w.write_batch(&v, Some(defs), reps).map_err(e)?;
                }
                ColumnWriter::FloatColumnWriter(w) => {
                    let v: Vec<f32> = cells
                        .filter_map(|c| match c {
                            Cell::F32(x) => Some(*x),
                            _ => None,
                        })
                        .collect();
                    w.write_batch(&v, Some(defs), reps).map_err(e)?;
                }
                ColumnWriter::DoubleColumnWriter(w) => {
                    let v: Vec<f64> = cells
                        .filter_map(|c| match c {
                            Cell::F64(x) => Some(*x),
                            _ => None,
                        })
                        .collect();
                    w.write_batch(&v, Some(defs), reps).map_err(e)?;
                }
                ColumnWriter::BoolColumnWriter(w) => {
                    let v: Vec<bool> = cells
                        .filter_map(|c| match c {
                            Cell::Bool(x) => Some(*x),
                            _ => None,
                        })
                        .collect();
                    w.write_batch(&v, Some(defs), reps).map_err(e)?;
                }
                ColumnWriter::FixedLenByteArrayColumnWriter(w) => {
                    let v: Vec<FixedLenByteArray> = cells
                        .filter_map(|c| match c {
                            Cell::I128(x) => {
                                Some(FixedLenByteArray::from(x.to_be_bytes().to_vec()))
                            }
                            _ => None,
                        })
                        .collect();
                    w.write_batch(&v, Some(defs), reps).map_err(e)?;
                }
                _ => return Err("unexpected Parquet column type".into()),
            }
            col.close().map_err(e)?;
            i += 1;
        }
        rg.close().map_err(e)?;
        writer.into_inner().map_err(e)
    }
}

/// A timestamp in milliseconds since the epoch: epoch seconds or milliseconds (numbers, or
/// numeric strings), ISO-8601 / `yyyy-MM-dd HH:mm:ss[.fff]` text (UTC unless it carries an
/// offset), or one of the Hive SerDe's `TimestampFormats` (Joda patterns, or `millis`).
pub fn timestamp_ms(v: &Value, formats: &[String]) -> Option<i64> {
    let from_number = |f: f64| -> i64 {
        // Firehose's OpenX SerDe takes epoch seconds or milliseconds; a value past year 5138
        // in seconds is read as milliseconds.
        if f.abs() >= 1e11 {
            f as i64
        } else {
            (f * 1000.0).round() as i64
        }
    };
    let s = match v {
        Value::Number(n) => return n.as_f64().map(from_number),
        Value::String(s) => s.trim(),
        _ => return None,
    };
    for f in formats {
        if f == "millis" {
            if let Ok(n) = s.parse::<i64>() {
                return Some(n);
            }
            continue;
        }
        let pattern = joda_to_strftime(f);
        if let Ok(t) = chrono::DateTime::parse_from_str(s, &pattern) {
            return Some(t.timestamp_millis());
        }
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, &pattern) {
            return Some(t.and_utc().timestamp_millis());
        }
        if let Ok(d) = chrono::NaiveDate::parse_from_str(s, &pattern) {
            return Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis());
        }
    }
    if let Ok(f) = s.parse::<f64>() {
        return Some(from_number(f));
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    for p in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, p) {
            return Some(t.and_utc().timestamp_millis());
        }
    }
    None
}

/// Whether leaf column `i` (in schema order) is inside an array or map.
fn leaf_repeated(columns: &[Column], i: usize) -> bool {
    fn walk(shape: &Shape, repeated: bool, out: &mut Vec<bool>) {
        match shape {
            Shape::Leaf(_) => out.push(repeated),
            Shape::List(e) => walk(e, true, out),
            Shape::Map(_, v) => {
                out.push(true);
                walk(v, true, out);
            }
            Shape::Struct(f) => f.iter().for_each(|(_, s)| walk(s, repeated, out)),
        }
    }
    let mut out = Vec::new();
    for c in columns {
        walk(&c.shape, false, &mut out);
    }
    out.get(i).copied().unwrap_or(false)
}

/// The Parquet type of a column: primitives with their logical annotation, `array` as the
/// standard three-level LIST, `map` as MAP with a required key, `struct` as a group.
fn parquet_type(
    name: &str,
    shape: &Shape,
    repetition: Repetition,
) -> parquet::errors::Result<Arc<Type>> {
    let t = match shape {
        Shape::Leaf(ty) => {
            let (physical, converted) = match *ty {
                ColumnType::String => (Physical::BYTE_ARRAY, ConvertedType::UTF8),
                ColumnType::Binary => (Physical::BYTE_ARRAY, ConvertedType::NONE),
                ColumnType::TinyInt => (Physical::INT32, ConvertedType::INT_8),
                ColumnType::SmallInt => (Physical::INT32, ConvertedType::INT_16),
                ColumnType::Int => (Physical::INT32, ConvertedType::NONE),
                ColumnType::BigInt => (Physical::INT64, ConvertedType::NONE),
                ColumnType::Float => (Physical::FLOAT, ConvertedType::NONE),
                ColumnType::Double => (Physical::DOUBLE, ConvertedType::NONE),
                ColumnType::Boolean => (Physical::BOOLEAN, ConvertedType::NONE),
                ColumnType::Timestamp => (Physical::INT64, ConvertedType::TIMESTAMP_MILLIS),
                ColumnType::Date => (Physical::INT32, ConvertedType::DATE),
                ColumnType::Decimal(p, _) if p <= 18 => (Physical::INT64, ConvertedType::DECIMAL),
                ColumnType::Decimal(..) => (Physical::FIXED_LEN_BYTE_ARRAY, ConvertedType::DECIMAL),
            };
            let mut builder = Type::primitive_type_builder(name, physical)
                .with_repetition(repetition)
                .with_converted_type(converted);
            if let ColumnType::Decimal(p, s) = *ty {
                builder = builder.with_precision(p as i32).with_scale(s as i32);
                if p > 18 {
                    builder = builder.with_length(16);
                }
            }
            builder.build()?
        }
        Shape::Struct(fields) => Type::group_type_builder(name)
            .with_repetition(repetition)
            .with_fields(
                fields
                    .iter()
                    .map(|(n, s)| parquet_type(n, s, Repetition::OPTIONAL))
                    .collect::<Result<Vec<_>, _>>()?,
            )
            .build()?,
        Shape::List(elem) => Type::group_type_builder(name)
            .with_repetition(repetition)
            .with_converted_type(ConvertedType::LIST)
            .with_fields(vec![Arc::new(
                Type::group_type_builder("list")
                    .with_repetition(Repetition::REPEATED)
                    .with_fields(vec![parquet_type("element", elem, Repetition::OPTIONAL)?])
                    .build()?,
            )])
            .build()?,
        Shape::Map(key, value) => Type::group_type_builder(name)
            .with_repetition(repetition)
            .with_converted_type(ConvertedType::MAP)
            .with_fields(vec![Arc::new(
                Type::group_type_builder("key_value")
                    .with_repetition(Repetition::REPEATED)
                    .with_fields(vec![
                        parquet_type("key", &Shape::Leaf(*key), Repetition::REQUIRED)?,
                        parquet_type("value", value, Repetition::OPTIONAL)?,
                    ])
                    .build()?,
            )])
            .build()?,
    };
    Ok(Arc::new(t))
}

/// The unscaled value of decimal text (`-12.345`, `1e3`) at `scale` digits after the point,
/// rounded half up as Hive does.
fn parse_decimal(text: &str, scale: u8) -> Option<i128> {
    let (mantissa, exp) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (negative, digits) = match mantissa.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    // value = all_digits × 10^(exp − frac.len()); shift to `scale` digits.
    let all: String = format!("{int}{frac}");
    let shift = exp - frac.len() as i32 + scale as i32;
    let mut value: i128 = 0;
    let keep = if shift >= 0 {
        all.len()
    } else {
        all.len().saturating_sub((-shift) as usize)
    };
    for b in all.bytes().take(keep) {
        value = value.checked_mul(10)?.checked_add((b - b'0') as i128)?;
    }
    if shift > 0 {
        value = value.checked_mul(10i128.checked_pow(shift as u32)?)?;
    } else if shift < 0 {
        let dropped = all.as_bytes().get(keep).copied().unwrap_or(b'0');
        if keep < all.len() && dropped >= b'5' {
            value = value.checked_add(1)?;
        }
    }
    Some(if negative { -value } else { value })
}

/// Translates the common letters of a Joda-Time pattern to chrono's strftime syntax.
fn joda_to_strftime(joda: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = joda.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                if chars[i] == '%' {
                    out.push('%');
                }
                out.push(chars[i]);
                i += 1;
            }
            i += 1;
            continue;
        }
        let mut n = 1;
        while i + n < chars.len() && chars[i + n] == c {
            n += 1;
        }
        let piece = match (c, n) {
            ('y', 2) => "%y".to_string(),
            ('y', _) | ('Y', _) => "%Y".to_string(),
            ('M', 1 | 2) => "%m".to_string(),
            ('M', 3) => "%b".to_string(),
            ('M', _) => "%B".to_string(),
            ('d', _) => "%d".to_string(),
            ('H', _) => "%H".to_string(),
            ('h', _) => "%I".to_string(),
            ('m', _) => "%M".to_string(),
            ('s', _) => "%S".to_string(),
            ('S', _) => "%.f".to_string(),
            ('a', _) => "%p".to_string(),
            ('Z', 1) | ('X', 1) => "%z".to_string(),
            ('Z', _) | ('X', _) => "%:z".to_string(),
            ('%', _) => "%%".repeat(n),
            _ => std::iter::repeat_n(c, n).collect(),
        };
        // `ss.SSS`: chrono's `%.f` consumes the dot itself.
        if c == 'S' && out.ends_with('.') {
            out.pop();
        }
        out.push_str(&piece);
        i += n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    fn converter(serde: Value, columns: &[(&str, &str)]) -> Converter {
        let config: ConversionConfig = serde_json::from_value(serde_json::json!({
            "InputFormatConfiguration": {"Deserializer": serde},
            "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {}}},
        }))
        .unwrap();
        let cols = columns
            .iter()
            .map(|(n, t)| Column {
                name: n.to_string(),
                shape: Shape::parse(t).unwrap(),
            })
            .collect();
        Converter::new(&config, cols)
    }

    fn read_back(c: &Converter, rows: &Shredded) -> Vec<Value> {
        let file = c.write(rows).unwrap();
        let reader = SerializedFileReader::new(bytes::Bytes::from(file)).unwrap();
        reader
            .get_row_iter(None)
            .unwrap()
            .map(|r| r.unwrap().to_json_value())
            .collect()
    }

    #[test]
    fn json_records_become_parquet_rows() {
        let c = converter(
            serde_json::json!({"OpenXJsonSerDe": {"ConvertDotsInJsonKeysToUnderscores": true}}),
            &[
                ("ticker", "string"),
                ("price", "double"),
                ("qty", "int"),
                ("at", "timestamp"),
                ("ok", "boolean"),
                ("a_b", "bigint"),
            ],
        );
        let mut rows = c
            .rows(br#"{"TICKER":"AMZN","price":"12.5","qty":3,"at":"2024-01-02T03:04:05Z","ok":true,"a.b":7}"#)
            .unwrap();
        rows.append(
            c.rows(br#"{"ticker":"X"} {"ticker":"Y","qty":null}"#)
                .unwrap(),
        );
        assert_eq!(rows.rows, 3);
        assert_eq!(rows.leaves[3].values, [Cell::I64(1_704_164_645_000)]);
        let got = read_back(&c, &rows);
        assert_eq!(
            got[0],
            serde_json::json!({"ticker":"AMZN","price":12.5,"qty":3,"at":"2024-01-02 03:04:05.000 +00:00","ok":true,"a_b":7})
        );
        assert_eq!(
            got[2],
            serde_json::json!({"ticker":"Y","price":null,"qty":null,"at":null,"ok":null,"a_b":null})
        );
    }

    #[test]
    fn bad_records_fail_conversion() {
        let c = converter(serde_json::json!({"OpenXJsonSerDe": {}}), &[("n", "int")]);
        assert!(c.rows(b"[1,2]").is_err());
        assert!(c.rows(b"not json").is_err());
        assert!(c.rows(br#"{"n":"x"}"#).is_err());
        assert!(c.rows(br#"{"n":9999999999}"#).is_err());
        let case = converter(
            serde_json::json!({"OpenXJsonSerDe": {"CaseInsensitive": false}}),
            &[("n", "int")],
        );
        assert_eq!(case.rows(br#"{"N":1}"#).unwrap().leaves[0].defs, [0]);
    }

    #[test]
    fn decimals_are_scaled_and_rounded_half_up() {
        assert_eq!(parse_decimal("12.345", 2), Some(1235));
        assert_eq!(parse_decimal("-12.344", 2), Some(-1234));
        assert_eq!(parse_decimal("1e3", 1), Some(10_000));
        assert_eq!(parse_decimal("7", 0), Some(7));
        assert_eq!(parse_decimal(".5", 0), Some(1));
        assert_eq!(parse_decimal("abc", 0), None);
        assert_eq!(
            ColumnType::parse("DECIMAL(38, 6)").unwrap(),
            ColumnType::Decimal(38, 6)
        );
        assert_eq!(
            ColumnType::parse("decimal").unwrap(),
            ColumnType::Decimal(10, 0)
        );
        assert!(ColumnType::parse("decimal(40,2)").is_err());
        let c = converter(
            serde_json::json!({"OpenXJsonSerDe": {}}),
            &[("small", "decimal(5,2)"), ("big", "decimal(30,3)")],
        );
        let rows = c
            .rows(br#"{"small": 123.456, "big": "-98765432109876543210.5"}"#)
            .unwrap();
        assert_eq!(rows.leaves[0].values, [Cell::I64(12346)]);
        assert!(c.rows(br#"{"small": 1000}"#).is_err());
        assert_eq!(
            read_back(&c, &rows)[0],
            serde_json::json!({"small": "123.46", "big": "-98765432109876543210.500"})
        );
    }

    #[test]
    fn arrays_maps_and_structs_are_nested_parquet_columns() {
        assert_eq!(
            Shape::parse("struct<a:int,b:array<map<string,decimal(5,2)>>>").unwrap(),
            Shape::Struct(vec![
                ("a".into(), Shape::Leaf(ColumnType::Int)),
                (
                    "b".into(),
                    Shape::List(Box::new(Shape::Map(
                        ColumnType::String,
                        Box::new(Shape::Leaf(ColumnType::Decimal(5, 2)))
                    )))
                ),
            ])
        );
        assert!(Shape::parse("array<int").is_err());
        assert!(Shape::parse("map<array<int>,int>").is_err());
        let c = converter(
            serde_json::json!({"OpenXJsonSerDe": {}}),
            &[
                ("id", "int"),
                ("tags", "array<string>"),
                ("attrs", "map<string,int>"),
                ("who", "struct<name:string,langs:array<string>>"),
                ("matrix", "array<array<int>>"),
            ],
        );
        let mut rows = c
            .rows(br#"{"id":1,"tags":["a","b"],"attrs":{"x":1,"y":2},"who":{"Name":"ada","langs":["en","fr"]},"matrix":[[1,2],[],[3]]}"#)
            .unwrap();
        rows.append(
            c.rows(br#"{"id":2,"tags":[],"attrs":{},"who":{"name":null},"matrix":null}"#)
                .unwrap(),
        );
        rows.append(c.rows(br#"{"id":3,"tags":[null,"c"]}"#).unwrap());
        let got = read_back(&c, &rows);
        assert_eq!(
            got[0],
            serde_json::json!({"id":1,"tags":["a","b"],"attrs":{"x":1,"y":2},"who":{"name":"ada","langs":["en","fr"]},"matrix":[[1,2],[],[3]]})
        );
        assert_eq!(
            got[1],
            serde_json::json!({"id":2,"tags":[],"attrs":{},"who":{"name":null,"langs":null},"matrix":null})
        );
        assert_eq!(
            got[2],
            serde_json::json!({"id":3,"tags":[null,"c"],"attrs":null,"who":null,"matrix":null})
        );
        assert!(c.rows(br#"{"tags":"not an array"}"#).is_err());
        assert!(c.rows(br#"{"attrs":{"x":"y"}}"#).is_err());
    }

    #[test]
    fn hive_timestamp_formats_are_joda_patterns() {
        let f = vec![
            "yyyy-MM-dd'T'HH:mm:ss.SSS".to_string(),
            "millis".to_string(),
        ];
        assert_eq!(
            timestamp_ms(&Value::String("2024-01-02T03:04:05.250".into()), &f),
            Some(1_704_164_645_250)
        );
        assert_eq!(timestamp_ms(&Value::String("1000".into()), &f), Some(1000));
        assert_eq!(
            timestamp_ms(&serde_json::json!(1_704_164_645), &[]),
            Some(1_704_164_645_000)
        );
        assert_eq!(
            timestamp_ms(&serde_json::json!(1_704_164_645_250i64), &[]),
            Some(1_704_164_645_250)
        );
    }

    #[test]
    fn glue_tables_are_read_from_the_catalog_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("db")).unwrap();
        std::fs::write(
            dir.path().join("db/t.json"),
            r#"{"Table":{"Name":"t","StorageDescriptor":{"Columns":[{"Name":"a","Type":"varchar(10)"},{"Name":"b","Type":"bigint"}]}}}"#,
        )
        .unwrap();
        let cols = load_table(Some(dir.path()), "db", "t").unwrap();
        assert_eq!(cols.len(), 2);
        assert_eq!(cols[1].shape, Shape::Leaf(ColumnType::BigInt));
        assert!(load_table(Some(dir.path()), "db", "missing").is_err());
        assert!(load_table(Some(dir.path()), "..", "t").is_err());
        assert!(load_table(None, "db", "t").is_err());
    }
}
