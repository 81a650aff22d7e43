//! The analytics engine: Kinesis Data Analytics (SQL) applications, their persisted
//! configuration and lifecycle, and the runners that execute RUNNING applications over
//! Tributary streams with the `tributary-sql` engine.
//!
//! `model` holds configurations in AWS's shapes; `compile` turns one into a runnable SQL
//! application; `runtime` runs it; `metrics` reports it. The API (`services::analytics`)
//! validates requests and calls [`Analytics`]; it never touches runners.
//!
//! On disk, under `<data-dir>/analytics/<application name>/`: `application.json` (the
//! configuration, written atomically on every change) and `checkpoint.json` (read positions of
//! a running application). Applications RUNNING when the process stopped start again when it
//! starts, from their checkpoint.

pub mod compile;
pub mod manifests;
pub mod metrics;
pub mod model;
pub mod runtime;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::protocol::AwsError;
use crate::storage::StorageError;
use crate::streams::Streams;
use model::{ApplicationConfig, Status};
use runtime::{Runner, Start};

/// AWS error names of the Kinesis Analytics API and its messages, in one place.
pub mod errors {
    use crate::protocol::AwsError;

    pub const RESOURCE_NOT_FOUND: &str = "ResourceNotFoundException";
    pub const RESOURCE_IN_USE: &str = "ResourceInUseException";
    pub const INVALID_ARGUMENT: &str = "InvalidArgumentException";
    pub const CONCURRENT_MODIFICATION: &str = "ConcurrentModificationException";
    pub const CODE_VALIDATION: &str = "CodeValidationException";
    pub const LIMIT_EXCEEDED: &str = "LimitExceededException";
    pub const TOO_MANY_TAGS: &str = "TooManyTagsException";
    pub const INVALID_CONFIGURATION: &str = "InvalidApplicationConfigurationException";
    pub const UNSUPPORTED_OPERATION: &str = "UnsupportedOperationException";
    pub const UNABLE_TO_DETECT_SCHEMA: &str = "UnableToDetectSchemaException";
    /// DiscoverInputSchema could not sample its source right now (503).
    pub const SERVICE_UNAVAILABLE: &str = "ServiceUnavailableException";

    pub fn not_found(name: &str) -> AwsError {
        AwsError::new(
            RESOURCE_NOT_FOUND,
            format!("Application {name} is not found."),
        )
    }

    pub fn exists(name: &str) -> AwsError {
        AwsError::new(
            RESOURCE_IN_USE,
            format!("Application {name} already exists."),
        )
    }

    pub fn in_use(name: &str, status: &str) -> AwsError {
        AwsError::new(
            RESOURCE_IN_USE,
            format!("Application {name} is in {status} state and cannot be modified."),
        )
    }

    pub fn version_mismatch(name: &str, given: i64, current: i64) -> AwsError {
        AwsError::new(
            CONCURRENT_MODIFICATION,
            format!(
                "Provided application version id ({given}) does not match current application version id ({current}) for application {name}."
            ),
        )
    }

    pub fn invalid(message: impl Into<String>) -> AwsError {
        AwsError::new(INVALID_ARGUMENT, message)
    }
}

/// A KDA account allows 50 applications (the default quota).
pub const MAX_APPLICATIONS: usize = 50;

struct RunnerHandle {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<runtime::Checkpoint>,
}

/// One application: its configuration and, while it runs, its runner.
pub struct AppEntry {
    config: Mutex<ApplicationConfig>,
    runner: Mutex<Option<RunnerHandle>>,
    /// Serialises changes of this application (configuration, start, stop).
    control: tokio::sync::Mutex<()>,
    dir: Option<PathBuf>,
    /// Where the runner stopped by StopApplication had read: LAST_STOPPED_POINT resumes there
    /// (also without a data directory, where no checkpoint file is written).
    stopped_at: Mutex<Option<runtime::Checkpoint>>,
}

impl AppEntry {
    pub fn config(&self) -> ApplicationConfig {
        self.config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_status(&self, status: Status) {
        self.config.lock().unwrap_or_else(|e| e.into_inner()).status = status;
    }

    fn persist(&self) -> Result<(), StorageError> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let cfg = self.config();
        crate::streams::stream::write_atomic(
            &dir.join("application.json"),
            &serde_json::to_vec_pretty(&cfg).unwrap_or_default(),
        )
    }

    fn checkpoint_path(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join("checkpoint.json"))
    }

    fn take_runner(&self) -> Option<RunnerHandle> {
        self.runner.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Every application of the account.
pub struct Analytics {
    pub streams: Arc<Streams>,
    /// Where reference data (`S3ReferenceDataSource`) is read from: the object store the
    /// delivery streams write to.
    store: Option<crate::delivery::store::Store>,
    /// The delivery streams a `KinesisFirehoseOutput` writes to.
    pub delivery: Option<Arc<crate::delivery::DeliveryStreams>>,
    apps: Mutex<BTreeMap<String, Arc<AppEntry>>>,
    /// Serialises creation and deletion (names, quota).
    lifecycle: tokio::sync::Mutex<()>,
}

fn storage_error(e: StorageError) -> AwsError {
    tracing::error!(error = %e, "Could not persist an analytics application.");
    AwsError::internal("")
}

impl Analytics {
    /// Loads persisted applications and starts those that were RUNNING (or starting).
    pub async fn open(
        streams: Arc<Streams>,
        store: Option<crate::delivery::StoreConfig>,
        delivery: Option<Arc<crate::delivery::DeliveryStreams>>,
    ) -> Result<Arc<Analytics>, StorageError> {
        let store = store.and_then(|cfg| {
            crate::delivery::store::Store::new(&cfg, Default::default())
                .map_err(|e| tracing::warn!(error = %e, "Reference data cannot be loaded: the object store is not usable."))
                .ok()
        });
        let a = Arc::new(Analytics {
            store,
            delivery,
            streams,
            apps: Mutex::new(BTreeMap::new()),
            lifecycle: tokio::sync::Mutex::new(()),
        });
        let Some(root) = a.root() else {
            return Ok(a);
        };
        if !root.exists() {
            return Ok(a);
        }
        let entries = std::fs::read_dir(&root).map_err(|e| StorageError::io(&root, e))?;
        for entry in entries.flatten() {
            let dir = entry.path();
            let Ok(raw) = std::fs::read(dir.join("application.json")) else {
                continue;
            };
            let Ok(mut cfg) = serde_json::from_slice::<ApplicationConfig>(&raw) else {
                tracing::warn!(dir = %dir.display(), "Skipping an unreadable application.");
                continue;
            };
            if cfg.status == Status::Deleting {
                let _ = std::fs::remove_dir_all(&dir);
                continue;
            }
            let resume = matches!(
                cfg.status,
                Status::Running | Status::Starting | Status::Updating
            );
            cfg.status = Status::Ready;
            let name = cfg.name.clone();
            let entry = Arc::new(AppEntry {
                config: Mutex::new(cfg),
                runner: Mutex::new(None),
                control: tokio::sync::Mutex::new(()),
                stopped_at: Mutex::new(None),
                dir: Some(dir),
            });
            a.apps
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(name.clone(), entry.clone());
            if resume {
                let starts = entry
                    .config()
                    .inputs
                    .iter()
                    .map(|i| (i.id.clone(), Start::LastStoppedPoint))
                    .collect();
                match a.launch(&entry, &starts, None).await {
                    Ok(()) => {
                        tracing::info!(application = %name, "Resumed a running application.")
                    }
                    Err(e) => {
                        tracing::error!(application = %name, error = %e.message, "Could not resume an application.")
                    }
                }
            }
        }
        Ok(a)
    }

    fn root(&self) -> Option<PathBuf> {
        self.streams
            .cfg
            .data_dir
            .as_ref()
            .map(|d| d.join("analytics"))
    }

    pub fn account(&self) -> &str {
        self.streams.account()
    }

    pub fn region(&self) -> &str {
        &self.streams.cfg.region
    }

    pub fn application_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:kinesisanalytics:{}:{}:application/{}",
            self.region(),
            self.account(),
            name
        )
    }

    pub fn now_ms(&self) -> i64 {
        self.streams.clock.now_ms()
    }

    pub fn list(&self) -> Vec<Arc<AppEntry>> {
        self.apps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    pub fn get(&self, name: &str) -> Result<Arc<AppEntry>, AwsError> {
        self.apps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(|| errors::not_found(name))
    }

    /// The application an ARN names (tag operations).
    pub fn by_arn(&self, arn: &str) -> Result<Arc<AppEntry>, AwsError> {
        let name = arn
            .rsplit_once(":application/")
            .map(|(_, n)| n)
            .filter(|_| arn.starts_with("arn:aws"))
            .ok_or_else(|| errors::invalid(format!("Invalid ResourceARN: {arn}")))?;
        let entry = self.get(name)?;
        if entry.config().arn != arn {
            return Err(errors::not_found(name));
        }
        Ok(entry)
    }

    /// Stores a new application (READY).
    pub async fn create(&self, cfg: ApplicationConfig) -> Result<(), AwsError> {
        let _l = self.lifecycle.lock().await;
        {
            let apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
            if apps.contains_key(&cfg.name) {
                return Err(errors::exists(&cfg.name));
            }
            if apps.len() >= MAX_APPLICATIONS {
                return Err(AwsError::new(
                    errors::LIMIT_EXCEEDED,
                    format!(
                        "Limit of {MAX_APPLICATIONS} applications per account has been reached."
                    ),
                ));
            }
        }
        let name = cfg.name.clone();
        let entry = Arc::new(AppEntry {
            dir: self.root().map(|r| r.join(&name)),
            config: Mutex::new(cfg),
            runner: Mutex::new(None),
            control: tokio::sync::Mutex::new(()),
            stopped_at: Mutex::new(None),
        });
        entry.persist().map_err(storage_error)?;
        self.apps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, entry);
        Ok(())
    }

    /// Changes an application's configuration: checks `CurrentApplicationVersionId` (when
    /// given), applies `f`, bumps the version and persists. A running application is restarted
    /// on the new configuration (UPDATING, then RUNNING) and resumes from its read positions.
    pub async fn update<T>(
        &self,
        name: &str,
        current_version: Option<i64>,
        f: impl FnOnce(&mut ApplicationConfig) -> Result<T, AwsError>,
    ) -> Result<T, AwsError> {
        let entry = self.get(name)?;
        let _c = entry.control.lock().await;
        let before = entry.config();
        if matches!(
            before.status,
            Status::Deleting | Status::Starting | Status::Stopping | Status::Updating
        ) {
            return Err(errors::in_use(name, before.status.as_str()));
        }
        if let Some(v) = current_version {
            if v != before.version {
                return Err(errors::version_mismatch(name, v, before.version));
            }
        }
        let mut next = before.clone();
        let out = f(&mut next)?;
        next.version = before.version + 1;
        next.updated_ms = self.now_ms();
        let running = before.status == Status::Running;
        if running {
            // The new configuration must run before the old one is replaced.
            compile::compile(&next, true).map_err(|e| config_error(&e))?;
            next.status = Status::Updating;
        }
        *entry.config.lock().unwrap_or_else(|e| e.into_inner()) = next;
        if let Err(e) = entry.persist() {
            *entry.config.lock().unwrap_or_else(|e| e.into_inner()) = before;
            return Err(storage_error(e));
        }
        if running {
            let reached = self.halt(&entry).await;
            let starts = entry
                .config()
                .inputs
                .iter()
                .map(|i| (i.id.clone(), Start::LastStoppedPoint))
                .collect();
            self.launch(&entry, &starts, reached).await?;
        }
        Ok(out)
    }

    /// Changes an application's tags: persisted, without a new version or a restart.
    pub async fn update_tags(
        &self,
        name: &str,
        f: impl FnOnce(&ApplicationConfig, &mut BTreeMap<String, String>) -> Result<(), AwsError>,
    ) -> Result<(), AwsError> {
        let entry = self.get(name)?;
        let _c = entry.control.lock().await;
        let before = entry.config();
        let mut tags = before.tags.clone();
        f(&before, &mut tags)?;
        entry.config.lock().unwrap_or_else(|e| e.into_inner()).tags = tags;
        if let Err(e) = entry.persist() {
            *entry.config.lock().unwrap_or_else(|e| e.into_inner()) = before;
            return Err(storage_error(e));
        }
        Ok(())
    }

    /// StartApplication: READY → STARTING → RUNNING.
    pub async fn start(&self, name: &str, starts: BTreeMap<String, Start>) -> Result<(), AwsError> {
        let entry = self.get(name)?;
        let _c = entry.control.lock().await;
        let cfg = entry.config();
        if cfg.status != Status::Ready {
            return Err(AwsError::new(
                errors::RESOURCE_IN_USE,
                format!(
                    "Application {name} is in {} state, it must be in READY state to be started.",
                    cfg.status.as_str()
                ),
            ));
        }
        {
            let mut c = entry.config.lock().unwrap_or_else(|e| e.into_inner());
            for i in c.inputs.iter_mut() {
                if let Some(s) = starts.get(&i.id) {
                    i.starting_position = Some(
                        match s {
                            Start::Now => "NOW",
                            Start::TrimHorizon => "TRIM_HORIZON",
                            Start::LastStoppedPoint => "LAST_STOPPED_POINT",
                        }
                        .into(),
                    );
                }
            }
        }
        let resume = entry
            .stopped_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        self.launch(&entry, &starts, resume).await?;
        *entry.stopped_at.lock().unwrap_or_else(|e| e.into_inner()) = None;
        entry.persist().map_err(storage_error)?;
        Ok(())
    }

    /// Compiles the configuration and spawns its runner; the application is RUNNING once the
    /// runner has located its inputs.
    async fn launch(
        &self,
        entry: &Arc<AppEntry>,
        starts: &BTreeMap<String, Start>,
        resume: Option<runtime::Checkpoint>,
    ) -> Result<(), AwsError> {
        let cfg = entry.config();
        let mut compiled = compile::compile(&cfg, true).map_err(|e| config_error(&e))?;
        self.load_reference_data(&mut compiled).await?;
        compiled.delivery = self.delivery.clone();
        entry.set_status(Status::Starting);
        let runner = Runner::new(
            cfg.name.clone(),
            self.streams.clone(),
            compiled,
            entry.checkpoint_path(),
            starts,
            resume,
        )
        .await;
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(runner.run(rx));
        *entry.runner.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(RunnerHandle { stop: tx, task });
        entry.set_status(Status::Running);
        let _ = entry.persist();
        Ok(())
    }

    /// Reads an object of the store reference data comes from (for DiscoverInputSchema's
    /// `S3Configuration`).
    pub async fn read_object(&self, bucket: &str, key: &str) -> Result<Vec<u8>, String> {
        let store = self
            .store
            .as_ref()
            .ok_or_else(|| "no object store is configured".to_string())?;
        store.get(bucket, key, MAX_REFERENCE_BYTES).await
    }

    /// Loads each reference table from its S3 object, as KDA does when an application starts
    /// or is updated.
    async fn load_reference_data(&self, compiled: &mut compile::Compiled) -> Result<(), AwsError> {
        for t in &compiled.tables {
            let fail = |m: String| {
                AwsError::new(
                    errors::INVALID_CONFIGURATION,
                    format!(
                        "Could not load reference data for table {} from s3://{}/{}: {m}",
                        t.name, t.bucket, t.key
                    ),
                )
            };
            let store = self
                .store
                .as_ref()
                .ok_or_else(|| fail("no object store is configured".into()))?;
            let data = store
                .get(&t.bucket, &t.key, MAX_REFERENCE_BYTES)
                .await
                .map_err(fail)?;
            let rows = reference_rows(&t.schema, &data).map_err(|e| fail(e.message))?;
            compiled
                .app
                .load_table(&t.name, rows)
                .map_err(|e| fail(e.to_string()))?;
        }
        Ok(())
    }

    /// Stops the runner (if any), waits for its final checkpoint, and returns the positions it
    /// reached.
    async fn halt(&self, entry: &AppEntry) -> Option<runtime::Checkpoint> {
        let h = entry.take_runner()?;
        let _ = h.stop.send(true);
        h.task.await.ok()
    }

    /// StopApplication: RUNNING → STOPPING → READY. Stopping a READY application is a no-op.
    pub async fn stop(&self, name: &str) -> Result<(), AwsError> {
        let entry = self.get(name)?;
        let _c = entry.control.lock().await;
        let status = entry.config().status;
        match status {
            Status::Ready => return Ok(()),
            Status::Running => {}
            other => return Err(errors::in_use(name, other.as_str())),
        }
        entry.set_status(Status::Stopping);
        let _ = entry.persist();
        let reached = self.halt(&entry).await;
        *entry.stopped_at.lock().unwrap_or_else(|e| e.into_inner()) = reached;
        entry.set_status(Status::Ready);
        entry.persist().map_err(storage_error)
    }

    /// DeleteApplication: DELETING, runner stopped, files and metrics removed.
    pub async fn delete(&self, name: &str) -> Result<(), AwsError> {
        let _l = self.lifecycle.lock().await;
        let entry = self.get(name)?;
        let _c = entry.control.lock().await;
        entry.set_status(Status::Deleting);
        entry.persist().map_err(storage_error)?;
        self.halt(&entry).await;
        if let Some(dir) = &entry.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        let cfg = entry.config();
        let streams: Vec<String> = cfg
            .inputs
            .iter()
            .flat_map(|i| model::in_app_stream_names(&i.input))
            .chain(cfg.outputs.iter().filter_map(|o| o.output.name.clone()))
            .collect();
        metrics::global().remove(name, &streams);
        // Delivery streams it read keep their buffers for it no longer.
        if let Some(delivery) = &self.delivery {
            for ds in delivery.list() {
                ds.release(name);
            }
        }
        self.apps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        Ok(())
    }

    /// Stops every runner, each writing its checkpoint; statuses stay as persisted so running
    /// applications resume at the next start.
    pub async fn shutdown(&self) {
        for entry in self.list() {
            self.halt(&entry).await;
        }
    }
}

/// How a configuration that cannot run is reported.
/// KDA's limit on a reference data object.
const MAX_REFERENCE_BYTES: usize = 1 << 30;

/// The rows of a reference data object: CSV lines, or JSON (one document, or one per line).
fn reference_rows(
    schema: &tributary_sql::format::InputSchema,
    data: &[u8],
) -> Result<Vec<Vec<tributary_sql::Value>>, tributary_sql::EvalError> {
    let whole = schema.map_record(data, 0);
    let rows = match (&schema.format, whole) {
        (_, Ok(rows)) => rows,
        (tributary_sql::format::RecordFormat::Json { .. }, Err(_)) => {
            let mut rows = Vec::new();
            for line in data.split(|b| *b == b'\n') {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                rows.extend(schema.map_record(line, 0)?);
            }
            rows
        }
        (_, Err(e)) => return Err(e),
    };
    // map_record appends the input streams' APPROXIMATE_ARRIVAL_TIME, which tables do not have.
    Ok(rows
        .into_iter()
        .map(|mut r| {
            r.pop();
            r
        })
        .collect())
}

pub fn config_error(e: &compile::CompileError) -> AwsError {
    match e {
        compile::CompileError::Sql(sql) => code_error(sql),
        compile::CompileError::Config(m) => AwsError::new(errors::INVALID_CONFIGURATION, m.clone()),
    }
}

/// A SQL error as CodeValidationException, with its position in Calcite's words.
pub fn code_error(e: &tributary_sql::SqlError) -> AwsError {
    AwsError::new(errors::CODE_VALIDATION, e.to_string())
}
