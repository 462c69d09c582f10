//! File I/O behind a small trait: real files, memory, and a fault-injecting backend for tests.
//!
//! The log only ever uses these operations, so the memory backend makes tests fast and the
//! faulty backend can model exactly what survives a crash: bytes written but not yet synced are
//! kept apart from durable bytes.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// A directory of named files.
pub trait Storage: Send + Sync + std::fmt::Debug + 'static {
    /// Names of the files in the directory.
    fn list(&self) -> io::Result<Vec<String>>;
    /// Opens a file, creating it empty if `create` is set and it does not exist.
    fn open(&self, name: &str, create: bool) -> io::Result<Arc<dyn StorageFile>>;
    /// Removes a file.
    fn remove(&self, name: &str) -> io::Result<()>;
    /// Atomically renames a file, replacing `to`.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Makes creations, removals and renames durable.
    fn sync_dir(&self) -> io::Result<()>;
}

/// One open file.
pub trait StorageFile: Send + Sync + std::fmt::Debug {
    /// Current length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Whether the file is empty.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
    /// Fills `buf` from `offset`; fails with `UnexpectedEof` past the end.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Writes all of `buf` at `offset`, growing the file if needed.
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Makes written bytes durable (fdatasync).
    fn sync(&self) -> io::Result<()>;
    /// Truncates or extends (with zeros) the file.
    fn set_len(&self, len: u64) -> io::Result<()>;
}

/// Real files in a directory.
#[derive(Debug)]
pub struct FileStorage {
    dir: PathBuf,
}

impl FileStorage {
    /// Uses `dir`, creating it if needed.
    pub fn new(dir: impl AsRef<Path>) -> io::Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir)?;
        Ok(FileStorage { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[derive(Debug)]
struct RealFile(fs::File);

impl StorageFile for RealFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.0.read_exact_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }
    fn sync(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
}

impl Storage for FileStorage {
    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file()
                && let Some(name) = entry.file_name().to_str()
            {
                names.push(name.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    fn open(&self, name: &str, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(self.dir.join(name))?;
        Ok(Arc::new(RealFile(file)))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        fs::remove_file(self.dir.join(name))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        fs::rename(self.dir.join(from), self.dir.join(to))
    }

    fn sync_dir(&self) -> io::Result<()> {
        fs::File::open(&self.dir)?.sync_all()
    }
}

/// Files held in memory. Cloning shares the same files.
#[derive(Clone, Debug, Default)]
pub struct MemoryStorage {
    files: Arc<Mutex<BTreeMap<String, Arc<MemoryFile>>>>,
}

impl MemoryStorage {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    fn files(&self) -> MutexGuard<'_, BTreeMap<String, Arc<MemoryFile>>> {
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of a file's bytes (for tests that corrupt files).
    pub fn file_bytes(&self, name: &str) -> Option<Vec<u8>> {
        self.files().get(name).map(|f| f.bytes().clone())
    }

    /// Replaces a file's bytes (for tests that corrupt files).
    pub fn set_file_bytes(&self, name: &str, bytes: Vec<u8>) {
        let file = Arc::new(MemoryFile::default());
        *file.bytes() = bytes;
        self.files().insert(name.to_string(), file);
    }
}

#[derive(Debug, Default)]
struct MemoryFile {
    data: Mutex<Vec<u8>>,
}

impl MemoryFile {
    fn bytes(&self) -> MutexGuard<'_, Vec<u8>> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn read_from(data: &[u8], buf: &mut [u8], offset: u64) -> io::Result<()> {
    let start = usize::try_from(offset).map_err(|_| io::ErrorKind::UnexpectedEof)?;
    let end = start
        .checked_add(buf.len())
        .ok_or(io::ErrorKind::UnexpectedEof)?;
    let src = data.get(start..end).ok_or(io::ErrorKind::UnexpectedEof)?;
    buf.copy_from_slice(src);
    Ok(())
}

fn write_into(data: &mut Vec<u8>, buf: &[u8], offset: u64) -> io::Result<()> {
    let start = usize::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
    let end = start + buf.len();
    if data.len() < end {
        data.resize(end, 0);
    }
    if let Some(dst) = data.get_mut(start..end) {
        dst.copy_from_slice(buf);
    }
    Ok(())
}

impl StorageFile for MemoryFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.bytes().len() as u64)
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        read_from(&self.bytes(), buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        write_into(&mut self.bytes(), buf, offset)
    }
    fn sync(&self) -> io::Result<()> {
        Ok(())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        let len = usize::try_from(len).map_err(|_| io::ErrorKind::InvalidInput)?;
        self.bytes().resize(len, 0);
        Ok(())
    }
}

impl Storage for MemoryStorage {
    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.files().keys().cloned().collect())
    }
    fn open(&self, name: &str, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        let mut files = self.files();
        if let Some(f) = files.get(name) {
            return Ok(f.clone());
        }
        if !create {
            return Err(io::ErrorKind::NotFound.into());
        }
        let f = Arc::new(MemoryFile::default());
        files.insert(name.to_string(), f.clone());
        Ok(f)
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.files()
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| io::ErrorKind::NotFound.into())
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut files = self.files();
        let f = files.remove(from).ok_or(io::ErrorKind::NotFound)?;
        files.insert(to.to_string(), f);
        Ok(())
    }
    fn sync_dir(&self) -> io::Result<()> {
        Ok(())
    }
}

/// A crash-modelling backend: every file keeps the bytes written so far apart from the bytes
/// made durable by the last `sync`. Faults are scripted by counting sync points.
///
/// At the crash point (the `crash_at_sync`-th sync, counted from 0) the sync fails and every
/// later operation fails too, as if the machine had lost power. [`FaultyStorage::after_crash`]
/// then gives a fresh [`MemoryStorage`] with what a restarted machine would see.
#[derive(Clone, Debug)]
pub struct FaultyStorage {
    inner: Arc<Mutex<FaultState>>,
}

#[derive(Debug)]
struct FaultState {
    files: BTreeMap<String, Arc<FaultyFileData>>,
    syncs: u64,
    crash_at_sync: Option<u64>,
    fail_sync_at: Option<u64>,
    crashed: bool,
    /// Bytes that may still be written (across all files) before writes fail with ENOSPC.
    space_left: Option<u64>,
}

#[derive(Debug, Default)]
struct FaultyFileData {
    state: Mutex<FaultyFileState>,
}

#[derive(Debug, Default, Clone)]
struct FaultyFileState {
    written: Vec<u8>,
    durable: Vec<u8>,
}

/// What of the unsynced bytes survive a crash, per file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashImage {
    /// Only durable bytes.
    DurableOnly,
    /// Everything written, as if the OS had flushed it all just in time.
    AllWritten,
    /// Durable bytes, then the unsynced suffix cut at a pseudo-random length seeded by the value,
    /// and with its last surviving 512-byte sector zeroed (a torn write).
    Torn(u64),
}

impl FaultyStorage {
    /// A backend with no scripted fault.
    pub fn new() -> Self {
        FaultyStorage {
            inner: Arc::new(Mutex::new(FaultState {
                files: BTreeMap::new(),
                syncs: 0,
                crash_at_sync: None,
                fail_sync_at: None,
                crashed: false,
                space_left: None,
            })),
        }
    }

    /// Loses power at the `n`-th sync (0-based): that sync and everything after fails.
    pub fn crash_at_sync(self, n: u64) -> Self {
        self.state().crash_at_sync = Some(n);
        self
    }

    /// Fails only the `n`-th sync (0-based) with an I/O error; the machine keeps running.
    pub fn fail_sync_at(self, n: u64) -> Self {
        self.state().fail_sync_at = Some(n);
        self
    }

    /// Models a disk with `bytes` of free space left (`None`: unlimited). Writes that grow a
    /// file past it write what fits and then fail with ENOSPC, as `write(2)` on a full disk
    /// does; truncating a file gives its space back.
    pub fn set_space_left(&self, bytes: Option<u64>) {
        self.state().space_left = bytes;
    }

    /// Number of syncs seen so far (file and directory).
    pub fn syncs(&self) -> u64 {
        self.state().syncs
    }

    /// Whether the scripted crash has happened.
    pub fn crashed(&self) -> bool {
        self.state().crashed
    }

    fn state(&self) -> MutexGuard<'_, FaultState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check_alive(&self) -> io::Result<()> {
        if self.state().crashed {
            Err(io::Error::other("simulated power loss"))
        } else {
            Ok(())
        }
    }

    /// Counts a sync point; decides whether it fails.
    fn sync_point(&self) -> io::Result<()> {
        let mut s = self.state();
        if s.crashed {
            return Err(io::Error::other("simulated power loss"));
        }
        let n = s.syncs;
        s.syncs += 1;
        if s.crash_at_sync == Some(n) {
            s.crashed = true;
            return Err(io::Error::other("simulated power loss"));
        }
        if s.fail_sync_at == Some(n) {
            // EIO, as a failing device reports it.
            return Err(io::Error::from_raw_os_error(5));
        }
        Ok(())
    }

    /// What a restarted machine sees.
    pub fn after_crash(&self, image: CrashImage) -> MemoryStorage {
        let out = MemoryStorage::new();
        for (name, file) in &self.state().files {
            let st = file.state.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let bytes = match image {
                CrashImage::DurableOnly => st.durable,
                CrashImage::AllWritten => st.written,
                CrashImage::Torn(seed) => torn(&st.durable, &st.written, seed),
            };
            out.set_file_bytes(name, bytes);
        }
        out
    }
}

impl Default for FaultyStorage {
    fn default() -> Self {
        Self::new()
    }
}

fn torn(durable: &[u8], written: &[u8], seed: u64) -> Vec<u8> {
    // Unsynced bytes start at the first difference between durable and written.
    let common = durable
        .iter()
        .zip(written)
        .take_while(|(a, b)| a == b)
        .count();
    let pending = written.len().saturating_sub(common);
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    x ^= x >> 31;
    let keep = usize::try_from(x % (pending as u64 + 1)).unwrap_or(0);
    let mut out = written.get(..common + keep).unwrap_or(written).to_vec();
    // The last surviving sector of the unsynced part reached the disk only partly.
    let end = out.len();
    if let Some(s) = out.get_mut(end.saturating_sub(512).max(common)..end) {
        s.fill(0);
    }
    if let Some(rest) = durable.get(out.len()..) {
        out.extend_from_slice(rest);
    }
    out
}

#[derive(Debug)]
struct FaultyFile {
    storage: FaultyStorage,
    data: Arc<FaultyFileData>,
}

impl FaultyFile {
    fn st(&self) -> MutexGuard<'_, FaultyFileState> {
        self.data.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl StorageFile for FaultyFile {
    fn len(&self) -> io::Result<u64> {
        self.storage.check_alive()?;
        Ok(self.st().written.len() as u64)
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.storage.check_alive()?;
        read_from(&self.st().written, buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.storage.check_alive()?;
        // Lock order: the storage's state, then the file's (as `after_crash` does).
        let mut fs = self.storage.state();
        let mut st = self.st();
        let end = offset.saturating_add(buf.len() as u64);
        let growth = end.saturating_sub(st.written.len() as u64);
        if let Some(left) = fs.space_left {
            if growth > left {
                // A full disk: the part that fits is written, then ENOSPC.
                let fits = usize::try_from(buf.len() as u64 - (growth - left)).unwrap_or(0);
                fs.space_left = Some(0);
                drop(fs);
                write_into(&mut st.written, buf.get(..fits).unwrap_or_default(), offset)?;
                return Err(io::Error::from_raw_os_error(28));
            }
            fs.space_left = Some(left - growth);
        }
        drop(fs);
        write_into(&mut st.written, buf, offset)
    }
    fn sync(&self) -> io::Result<()> {
        self.storage.sync_point()?;
        let mut st = self.st();
        st.durable = st.written.clone();
        Ok(())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.storage.check_alive()?;
        let len = usize::try_from(len).map_err(|_| io::ErrorKind::InvalidInput)?;
        let mut fs = self.storage.state();
        let mut st = self.st();
        let old = st.written.len() as u64;
        if let Some(left) = fs.space_left {
            let new = len as u64;
            if new > old {
                if new - old > left {
                    return Err(io::Error::from_raw_os_error(28));
                }
                fs.space_left = Some(left - (new - old));
            } else {
                fs.space_left = Some(left + (old - new));
            }
        }
        drop(fs);
        st.written.resize(len, 0);
        Ok(())
    }
}

impl Storage for FaultyStorage {
    fn list(&self) -> io::Result<Vec<String>> {
        self.check_alive()?;
        Ok(self.state().files.keys().cloned().collect())
    }
    fn open(&self, name: &str, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        self.check_alive()?;
        let mut s = self.state();
        let data = match s.files.get(name) {
            Some(d) => d.clone(),
            None if create => {
                let d = Arc::new(FaultyFileData::default());
                s.files.insert(name.to_string(), d.clone());
                d
            }
            None => return Err(io::ErrorKind::NotFound.into()),
        };
        drop(s);
        Ok(Arc::new(FaultyFile {
            storage: self.clone(),
            data,
        }))
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.check_alive()?;
        let mut s = self.state();
        let file = s.files.remove(name).ok_or(io::ErrorKind::NotFound)?;
        let freed = file
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .written
            .len() as u64;
        if let Some(left) = &mut s.space_left {
            *left += freed;
        }
        Ok(())
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.check_alive()?;
        let mut s = self.state();
        let f = s.files.remove(from).ok_or(io::ErrorKind::NotFound)?;
        s.files.insert(to.to_string(), f);
        Ok(())
    }
    fn sync_dir(&self) -> io::Result<()> {
        self.sync_point()
    }
}
