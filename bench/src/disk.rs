//! The disk under the scratch folder: how fast it takes the writes a durable log makes.
//!
//! Tributary acknowledges a PutRecords request once its records are written and synced, so on
//! a slow disk its throughput is bounded by the disk, not by the CPU, while the ceiling never
//! touches the disk. The report gives this bound next to the ratios so that a run on one
//! machine can be read against a run on another.

use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;
use rand::RngCore;

use crate::workload::{BATCH, RECORD_BYTES};

/// Bytes Tributary stores for one benchmark record: the data, its length prefixes, its
/// 16-character partition key and its share of the 36-byte batch header.
pub const STORED_PER_RECORD: f64 = (RECORD_BYTES + 2 + 16 + 4) as f64 + 36.0 / BATCH as f64;

/// Size of each probe write: about what one round of a PutRecords load writes.
const CHUNK: usize = 2 << 20;

/// Alignment of direct I/O buffers and offsets.
const ALIGN: usize = 4096;

/// What the disk did in the probe.
#[derive(Debug, Clone)]
pub struct Disk {
    /// MB/s (10^6 bytes) of each probe run.
    pub runs: Vec<f64>,
    /// The probe bypassed the page cache (`O_DIRECT`), as Tributary does by default.
    pub direct: bool,
    /// The mount under the scratch folder: its source and filesystem type, from
    /// `/proc/self/mounts`.
    pub mount: Option<(String, String)>,
}

impl Disk {
    /// The median run's MB/s.
    pub fn median(&self) -> f64 {
        let mut v = self.runs.clone();
        v.sort_by(f64::total_cmp);
        v.get(v.len().saturating_sub(1) / 2).copied().unwrap_or(0.0)
    }

    /// Benchmark records per second the disk can make durable at its median rate.
    pub fn records_per_s(&self) -> f64 {
        self.median() * 1e6 / STORED_PER_RECORD
    }

    /// One line for the report.
    pub fn describe(&self) -> String {
        let runs: Vec<String> = self.runs.iter().map(|r| format!("{r:.0}")).collect();
        let device = match &self.mount {
            Some((source, fstype)) => format!(" (`{source}`, {fstype})"),
            None => String::new(),
        };
        format!(
            "the disk under the scratch folder{device} took {:.0} MB/s of {} MiB writes of random bytes{}, each followed by `fdatasync` (median of {}: {} MB/s); at {:.0} bytes stored per record, that is about {} records/s for a log that syncs what it writes",
            self.median(),
            CHUNK >> 20,
            if self.direct { " with `O_DIRECT`" } else { "" },
            self.runs.len(),
            runs.join(", "),
            STORED_PER_RECORD,
            crate::report::fmt_count(self.records_per_s())
        )
    }
}

/// Appends `total` bytes of random data to a new file in `dir` in [`CHUNK`]-byte writes, each
/// followed by `fdatasync`, `rounds` times; with `O_DIRECT` where the filesystem takes it.
pub fn measure(dir: &Path, rounds: usize, total: usize) -> anyhow::Result<Disk> {
    let probe = tempfile::Builder::new()
        .prefix("tributary-bench-disk")
        .tempdir_in(dir)
        .with_context(|| format!("a probe folder in {}", dir.display()))?;
    // An aligned window of a larger vector: direct I/O needs an aligned address.
    let mut raw = vec![0u8; CHUNK + ALIGN];
    let start = raw.as_ptr().align_offset(ALIGN);
    anyhow::ensure!(start < ALIGN, "no aligned window in the probe buffer");
    let buf = &mut raw[start..start + CHUNK];
    rand::thread_rng().fill_bytes(buf);
    let mut runs = Vec::with_capacity(rounds);
    let mut direct = true;
    for round in 0..rounds {
        let path = probe.path().join(format!("probe-{round}"));
        let open = |flags: i32| {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .custom_flags(flags)
                .open(&path)
        };
        let file = match open(if direct { libc::O_DIRECT } else { 0 }) {
            Err(e) if direct && e.kind() == ErrorKind::InvalidInput => {
                direct = false;
                open(0)
            }
            r => r,
        }
        .with_context(|| format!("creating {}", path.display()))?;
        let writes = total.div_ceil(CHUNK).max(1);
        let began = Instant::now();
        for i in 0..writes {
            file.write_all_at(buf, (i * CHUNK) as u64)?;
            file.sync_data()?;
        }
        let secs = began.elapsed().as_secs_f64().max(1e-9);
        runs.push((writes * CHUNK) as f64 / secs / 1e6);
        drop(file);
        std::fs::remove_file(&path)?;
    }
    let mount = std::fs::read_to_string("/proc/self/mounts")
        .ok()
        .and_then(|table| mount_of(&table, &dir.canonicalize().ok()?));
    Ok(Disk {
        runs,
        direct,
        mount,
    })
}

/// The source and filesystem type of the mount holding `path` (absolute, without symlinks)
/// in a mount table of `/proc/self/mounts`' format: the last of the longest mount points
/// that contain it, as the kernel resolves stacked mounts.
fn mount_of(table: &str, path: &Path) -> Option<(String, String)> {
    let mut best: Option<(usize, &str, &str)> = None;
    for line in table.lines() {
        let mut fields = line.split(' ');
        let (Some(source), Some(target), Some(fstype)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        // Spaces in mount points are written as `\040`; such mount points are rare enough
        // to take literally.
        let depth = Path::new(target).components().count();
        if path.starts_with(target) && best.is_none_or(|(d, _, _)| depth >= d) {
            best = Some((depth, source, fstype));
        }
    }
    best.map(|(_, source, fstype)| (source.to_owned(), fstype.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_writes_and_removes_its_files_and_reports_a_rate() {
        let dir = tempfile::tempdir().unwrap();
        let disk = measure(dir.path(), 3, 4 << 20).unwrap();
        assert_eq!(disk.runs.len(), 3);
        assert!(disk.runs.iter().all(|r| *r > 0.0));
        assert!(disk.median() >= disk.runs.iter().copied().fold(f64::MAX, f64::min));
        assert!(disk.records_per_s() > 0.0);
        assert!(disk.describe().contains("fdatasync"));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        if cfg!(target_os = "linux") {
            let (source, fstype) = disk
                .mount
                .clone()
                .expect("a mount under the temporary folder");
            assert!(!source.is_empty() && !fstype.is_empty());
            assert!(disk.describe().contains(&format!("(`{source}`, {fstype})")));
        }
    }

    #[test]
    fn the_mount_of_a_path_is_its_deepest_mount_point_and_the_last_one_stacked_there() {
        let table = "/dev/vda / ext4 rw 0 0\n\
                     proc /proc proc rw 0 0\n\
                     tmpfs /mnt/fast tmpfs rw 0 0\n\
                     /dev/loop0 /mnt/fast ext4 rw 0 0\n\
                     /dev/loop1 /mnt/fastest ext4 rw 0 0\n";
        let of = |p: &str| mount_of(table, Path::new(p)).map(|(s, t)| format!("{s} {t}"));
        assert_eq!(of("/work/scratch").as_deref(), Some("/dev/vda ext4"));
        assert_eq!(of("/mnt/fast/run-1").as_deref(), Some("/dev/loop0 ext4"));
        assert_eq!(of("/mnt/fast").as_deref(), Some("/dev/loop0 ext4"));
        // A path component, not a string prefix.
        assert_eq!(of("/mnt/faster").as_deref(), Some("/dev/vda ext4"));
        assert_eq!(mount_of("", Path::new("/x")), None);
    }
}
