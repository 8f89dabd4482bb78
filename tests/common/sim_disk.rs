//! A simulated disk behind annals' I/O seam, for power-loss and fault tests.
//!
//! Every operation is carried out on the real file system (the *live*
//! image), so the engine's memory maps and its reads through `std` keep
//! working. Beside it the disk keeps a *durable* image of every file and
//! directory entry, as a power cut would leave them: a write becomes durable
//! only at `sync_data` of its file, and a create, rename or remove only at
//! `sync_dir` of its directory. Real `fsync`s are never issued, which keeps
//! sweeps fast; the durable image is the only truth about durability here.
//!
//! Two kinds of trouble can be planned:
//!
//! - **Power loss** after operation N ([`SimDisk::crash_after`]): operations
//!   1..=N run, every later one fails with `EIO`, and
//!   [`SimDisk::materialize`] writes what a power cut could have left into a
//!   fresh directory: the durable image, optionally with unsynced writes
//!   that happened to reach the disk (whole, the last one torn, or the last
//!   one garbage) and with a prefix of the unsynced directory operations.
//! - **One failed operation** N ([`SimDisk::fail_at`]): operation N fails
//!   with an error like the kernel's for its kind (a write may first write a
//!   prefix of its buffer, as a full disk does), and everything else runs.
//!
//! Operations are numbered from 1 in call order; [`SimDisk::ops`] after a
//! dry run tells how many a workload makes, so a test can sweep N over all
//! of them.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use annals::io::{FILE_MODE, FileIo, RealIo};

use super::Rng;

/// The kinds of operation that go through the seam.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Create,
    Write,
    SyncData,
    Rename,
    Remove,
    SyncDir,
}

impl OpKind {
    pub fn is_sync(self) -> bool {
        matches!(self, OpKind::SyncData | OpKind::SyncDir)
    }
}

/// What a power cut left of the writes and directory operations that were
/// not yet synced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Nothing unsynced reached the disk.
    DurableOnly,
    /// Every unsynced write reached the disk whole (the cut came just
    /// before the sync would have returned).
    AllWrites,
    /// Every unsynced write reached the disk, except that only the first
    /// `keep` bytes of the last one did.
    TornLast { keep: usize },
    /// Every unsynced write reached the disk, except that the last one's
    /// range holds `len` bytes of garbage (a misdirected or half-done write).
    GarbageLast { len: usize, seed: u64 },
}

/// The choice of what a power cut keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrashImage {
    pub writes: Fate,
    /// How many of the unsynced directory operations (in order) reached the
    /// disk anyway; clamped to how many there are.
    pub dir_ops: usize,
}

impl CrashImage {
    pub const DURABLE: CrashImage = CrashImage {
        writes: Fate::DurableOnly,
        dir_ops: 0,
    };
}

/// The trouble planned for a [`SimDisk`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Plan {
    None,
    CrashAfter(u64),
    FailAt {
        op: u64,
        /// For a write: how many bytes of it land before it fails.
        partial: usize,
    },
}

type FileId = usize;

#[derive(Debug, Default)]
struct SimFile {
    durable: Vec<u8>,
    /// Writes since the last sync, in order: offset and bytes.
    pending: Vec<(u64, Vec<u8>)>,
}

#[derive(Clone, Debug)]
enum DirOp {
    Create(OsString, FileId),
    Rename(OsString, OsString),
    Remove(OsString),
}

#[derive(Debug, Default)]
struct SimDir {
    live: BTreeMap<OsString, FileId>,
    durable: BTreeMap<OsString, FileId>,
    pending: Vec<DirOp>,
}

fn apply(entries: &mut BTreeMap<OsString, FileId>, op: &DirOp) {
    match op {
        DirOp::Create(name, id) => {
            entries.insert(name.clone(), *id);
        }
        DirOp::Rename(from, to) => {
            if let Some(id) = entries.remove(from) {
                entries.insert(to.clone(), id);
            }
        }
        DirOp::Remove(name) => {
            entries.remove(name);
        }
    }
}

#[derive(Debug)]
struct State {
    /// Operations attempted so far, failed ones included.
    ops: u64,
    plan: Plan,
    crashed: bool,
    /// `sync_data` and `sync_dir` calls attempted, failed ones included.
    sync_calls: u64,
    /// The operation that [`Plan::FailAt`] failed, once it has.
    failed: Option<(u64, OpKind)>,
    files: Vec<SimFile>,
    dirs: BTreeMap<PathBuf, SimDir>,
    /// The most recent write still unsynced: its file and index in
    /// `pending`.
    last_write: Option<(FileId, usize)>,
    /// From [`SimDisk::fail_first_write_to`]: a path suffix and how many
    /// bytes land.
    fail_write_to: Option<(String, usize)>,
    /// Calls the model cannot follow (a write to a file it does not know):
    /// a bug in the test or a change in the engine worth knowing about.
    surprises: Vec<String>,
    /// What happened, one line per operation, for failure messages.
    trace: Vec<String>,
}

/// A simulated disk; see the module docs.
pub struct SimDisk {
    state: Mutex<State>,
}

impl fmt::Debug for SimDisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("SimDisk")
            .field("ops", &s.ops)
            .field("plan", &s.plan)
            .field("crashed", &s.crashed)
            .finish_non_exhaustive()
    }
}

fn split(path: &Path) -> (PathBuf, OsString) {
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let name = path.file_name().map(OsString::from).unwrap_or_default();
    (dir, name)
}

/// The error of a disk that is gone: `EIO`, as the kernel reports it.
fn eio() -> io::Error {
    io::Error::from_raw_os_error(libc::EIO)
}

impl SimDisk {
    /// A disk that knows `dir` and takes every regular file in it (but the
    /// lock file, which annals does not write through the seam) as durable.
    pub fn attach(dir: &Path) -> Arc<SimDisk> {
        let mut state = State {
            ops: 0,
            plan: Plan::None,
            crashed: false,
            sync_calls: 0,
            failed: None,
            files: Vec::new(),
            dirs: BTreeMap::new(),
            last_write: None,
            surprises: Vec::new(),
            trace: Vec::new(),
            fail_write_to: None,
        };
        let mut sim_dir = SimDir::default();
        for entry in std::fs::read_dir(dir).expect("list the directory to attach") {
            let entry = entry.expect("list the directory to attach");
            if !entry.file_type().expect("file type").is_file() || entry.file_name() == "LOCK" {
                continue;
            }
            let bytes = std::fs::read(entry.path()).expect("read a file to attach");
            let id = state.files.len();
            state.files.push(SimFile {
                durable: bytes,
                pending: Vec::new(),
            });
            sim_dir.live.insert(entry.file_name(), id);
            sim_dir.durable.insert(entry.file_name(), id);
        }
        state.dirs.insert(dir.to_path_buf(), sim_dir);
        Arc::new(SimDisk {
            state: Mutex::new(state),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lets operations 1..=`n` run and fails every later one, as if the
    /// power went out right after operation `n`.
    pub fn crash_after(&self, n: u64) {
        self.lock().plan = Plan::CrashAfter(n);
    }

    /// Plans a power cut right after the operations made so far.
    pub fn crash_now(&self) {
        let mut s = self.lock();
        s.plan = Plan::CrashAfter(s.ops);
    }

    /// Fails operation `n` alone. If it is a write, its first `partial`
    /// bytes (clamped) land first, as on a disk that fills up mid-write.
    pub fn fail_at(&self, n: u64, partial: usize) {
        self.lock().plan = Plan::FailAt { op: n, partial };
    }

    /// Fails the first write to a file whose path ends with `suffix`
    /// (landing its first `partial` bytes first), whenever it comes: for
    /// work on background threads, whose operation numbers vary.
    pub fn fail_first_write_to(&self, suffix: &str, partial: usize) {
        self.lock().fail_write_to = Some((suffix.to_owned(), partial));
    }

    /// Operations attempted so far.
    pub fn ops(&self) -> u64 {
        self.lock().ops
    }

    /// `sync_data` and `sync_dir` calls attempted so far.
    pub fn sync_calls(&self) -> u64 {
        self.lock().sync_calls
    }

    /// Whether the planned power cut has happened (an operation failed for
    /// it).
    pub fn crashed(&self) -> bool {
        self.lock().crashed
    }

    /// The operation that [`fail_at`](SimDisk::fail_at) failed, if it came.
    pub fn failed(&self) -> Option<(u64, OpKind)> {
        self.lock().failed
    }

    /// What the seam was asked, one line per operation.
    pub fn trace(&self) -> String {
        self.lock().trace.join("\n")
    }

    /// Calls the disk could not follow; a correct run has none.
    pub fn surprises(&self) -> Vec<String> {
        self.lock().surprises.clone()
    }

    /// How many unsynced directory operations `dir` has.
    pub fn pending_dir_ops(&self, dir: &Path) -> usize {
        self.lock().dirs.get(dir).map_or(0, |d| d.pending.len())
    }

    /// The length of the last unsynced write, if any.
    pub fn last_pending_write_len(&self) -> Option<usize> {
        let s = self.lock();
        let (id, i) = s.last_write?;
        s.files
            .get(id)
            .and_then(|f| f.pending.get(i))
            .map(|w| w.1.len())
    }

    /// Writes into `target` (an empty directory) the files of `dir` as the
    /// power cut described by `image` leaves them.
    pub fn materialize(&self, dir: &Path, target: &Path, image: &CrashImage) {
        let s = self.lock();
        let Some(sim_dir) = s.dirs.get(dir) else {
            return;
        };
        let mut entries = sim_dir.durable.clone();
        for op in sim_dir.pending.iter().take(image.dir_ops) {
            apply(&mut entries, op);
        }
        for (name, id) in entries {
            let file = &s.files[id];
            let mut bytes = file.durable.clone();
            let mut put = |offset: u64, data: &[u8]| {
                let at = offset as usize;
                if bytes.len() < at + data.len() {
                    bytes.resize(at + data.len(), 0);
                }
                bytes[at..at + data.len()].copy_from_slice(data);
            };
            if image.writes != Fate::DurableOnly {
                for (i, (offset, data)) in file.pending.iter().enumerate() {
                    let last = s.last_write == Some((id, i));
                    match image.writes {
                        Fate::TornLast { keep } if last => {
                            put(*offset, &data[..keep.min(data.len())])
                        }
                        Fate::GarbageLast { len, seed } if last => {
                            put(*offset, &Rng::new(seed).bytes(len.min(data.len())));
                        }
                        _ => put(*offset, data),
                    }
                }
            }
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(FILE_MODE)
                .open(target.join(&name))
                .and_then(|f| f.write_all_at(&bytes, 0))
                .expect("materialize a file");
        }
    }

    /// Counts the operation and decides whether it runs: `Ok(None)` to run
    /// it, `Ok(Some(partial))` for a write that must land `partial` bytes
    /// and then fail, `Err` to fail it now.
    fn begin(&self, s: &mut State, kind: OpKind, what: String) -> io::Result<Option<usize>> {
        s.ops += 1;
        if kind.is_sync() {
            s.sync_calls += 1;
        }
        let n = s.ops;
        let fail_write = match &s.fail_write_to {
            Some((suffix, partial)) if kind == OpKind::Write && what.ends_with(suffix.as_str()) => {
                Some(*partial)
            }
            _ => None,
        };
        s.trace.push(format!("{n}: {what}"));
        if let Some(partial) = fail_write {
            s.fail_write_to = None;
            s.failed = Some((n, kind));
            return Ok(Some(partial));
        }
        match s.plan {
            Plan::CrashAfter(after) if n > after || s.crashed => {
                s.crashed = true;
                Err(eio())
            }
            Plan::FailAt { op, partial } if op == n => {
                s.failed = Some((n, kind));
                match kind {
                    OpKind::Write => Ok(Some(partial)),
                    OpKind::Create => Err(io::Error::from_raw_os_error(libc::ENOSPC)),
                    OpKind::Rename | OpKind::Remove | OpKind::SyncData | OpKind::SyncDir => {
                        Err(eio())
                    }
                }
            }
            _ => Ok(None),
        }
    }

    fn lookup(s: &State, path: &Path) -> Option<FileId> {
        let (dir, name) = split(path);
        s.dirs.get(&dir)?.live.get(&name).copied()
    }
}

impl FileIo for SimDisk {
    fn create_new(&self, path: &Path) -> io::Result<File> {
        let mut s = self.lock();
        self.begin(&mut s, OpKind::Create, format!("create {}", path.display()))?;
        let file = RealIo.create_new(path)?;
        let (dir, name) = split(path);
        let id = s.files.len();
        s.files.push(SimFile::default());
        let d = s.dirs.entry(dir).or_default();
        d.live.insert(name.clone(), id);
        d.pending.push(DirOp::Create(name, id));
        Ok(file)
    }

    fn write_at(&self, file: &File, path: &Path, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut s = self.lock();
        let what = format!(
            "write {} bytes at {offset} of {}",
            buf.len(),
            path.display()
        );
        let partial = self.begin(&mut s, OpKind::Write, what)?;
        let Some(id) = SimDisk::lookup(&s, path) else {
            s.surprises.push(format!(
                "write to a file the disk does not know: {}",
                path.display()
            ));
            return Err(io::Error::other("simulated disk: unknown file"));
        };
        let landed = match partial {
            Some(n) => &buf[..n.min(buf.len())],
            None => buf,
        };
        file.write_all_at(landed, offset)?;
        if !landed.is_empty() {
            let f = &mut s.files[id];
            f.pending.push((offset, landed.to_vec()));
            let i = f.pending.len() - 1;
            s.last_write = Some((id, i));
        }
        match partial {
            Some(_) => Err(io::Error::from_raw_os_error(libc::ENOSPC)),
            None => Ok(()),
        }
    }

    /// Growing a file is a write of its last byte as far as durability
    /// goes: the new length reaches the durable image at the next sync.
    fn set_len(&self, file: &File, path: &Path, len: u64) -> io::Result<()> {
        let mut s = self.lock();
        let what = format!("extend {} to {len} bytes", path.display());
        if self.begin(&mut s, OpKind::Write, what)?.is_some() {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        let Some(id) = SimDisk::lookup(&s, path) else {
            s.surprises.push(format!(
                "extend of a file the disk does not know: {}",
                path.display()
            ));
            return Err(io::Error::other("simulated disk: unknown file"));
        };
        file.set_len(len)?;
        if let Some(last) = len.checked_sub(1) {
            let f = &mut s.files[id];
            f.pending.push((last, vec![0]));
            let i = f.pending.len() - 1;
            s.last_write = Some((id, i));
        }
        Ok(())
    }

    fn sync_data(&self, _file: &File, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        self.begin(&mut s, OpKind::SyncData, format!("sync {}", path.display()))?;
        let Some(id) = SimDisk::lookup(&s, path) else {
            s.surprises.push(format!(
                "sync of a file the disk does not know: {}",
                path.display()
            ));
            return Err(io::Error::other("simulated disk: unknown file"));
        };
        let f = &mut s.files[id];
        for (offset, data) in std::mem::take(&mut f.pending) {
            let at = offset as usize;
            if f.durable.len() < at + data.len() {
                f.durable.resize(at + data.len(), 0);
            }
            f.durable[at..at + data.len()].copy_from_slice(&data);
        }
        if s.last_write.is_some_and(|(w, _)| w == id) {
            s.last_write = None;
        }
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.lock();
        let what = format!("rename {} to {}", from.display(), to.display());
        self.begin(&mut s, OpKind::Rename, what)?;
        RealIo.rename(from, to)?;
        let (dir, from_name) = split(from);
        let (to_dir, to_name) = split(to);
        if dir != to_dir {
            s.surprises.push("rename across directories".to_owned());
        }
        let d = s.dirs.entry(dir).or_default();
        let op = DirOp::Rename(from_name, to_name);
        apply(&mut d.live, &op);
        d.pending.push(op);
        Ok(())
    }

    fn rename_over(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.lock();
        let what = format!("rename {} over {}", from.display(), to.display());
        self.begin(&mut s, OpKind::Rename, what)?;
        RealIo.rename_over(from, to)?;
        let (dir, from_name) = split(from);
        let (to_dir, to_name) = split(to);
        if dir != to_dir {
            s.surprises.push("rename across directories".to_owned());
        }
        // The directory entry `to` now names `from`'s file; the file it
        // named before is gone with the entry.
        let d = s.dirs.entry(dir).or_default();
        let op = DirOp::Rename(from_name, to_name);
        apply(&mut d.live, &op);
        d.pending.push(op);
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        self.begin(&mut s, OpKind::Remove, format!("remove {}", path.display()))?;
        RealIo.remove_file(path)?;
        let (dir, name) = split(path);
        let d = s.dirs.entry(dir).or_default();
        let op = DirOp::Remove(name);
        apply(&mut d.live, &op);
        d.pending.push(op);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.lock();
        self.begin(
            &mut s,
            OpKind::SyncDir,
            format!("sync dir {}", dir.display()),
        )?;
        if let Some(d) = s.dirs.get_mut(dir) {
            for op in std::mem::take(&mut d.pending) {
                apply(&mut d.durable, &op);
            }
        }
        Ok(())
    }
}
