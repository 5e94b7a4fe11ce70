//! The `.json.gz` files of an export, from a zip (what the Export API returns) or a directory of
//! any nesting, in a fixed order, each read as decompressed lines.
//!
//! Files are ordered by their Amplitude name, `<project>_<YYYY-MM-DD>_<H>#<n>.json.gz`, as
//! (project, day, hour, n), then by path; so a zip and the directory it was extracted to give
//! the same order, and so the same lake. Names that are not `.json.gz`, and paths with a
//! component starting with `.` or `_` (`__MACOSX/`, editor files), are left out.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use zip::ZipArchive;

use crate::error::ImportError;

const EXTENSION: &str = ".json.gz";

/// An export's files, listed and ordered; [`ExportFiles::open`] reads one.
pub struct ExportFiles {
    archive: Option<ZipArchive<BufReader<File>>>,
    files: Vec<ExportFile>,
}

/// One `.json.gz` file of an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportFile {
    /// How errors name it: the path, or `export.zip!/path/in/zip.json.gz`.
    pub name: String,
    /// Compressed size in bytes.
    pub compressed_bytes: u64,
    location: Location,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Location {
    ZipEntry(usize),
    Path(PathBuf),
}

impl ExportFiles {
    /// Lists the export at `input`: a zip file or a directory. A missing path, another kind of
    /// file, or an export without `.json.gz` files is an [`ErrorKind::Input`] error; a file that
    /// starts like a zip but cannot be read as one is [`ErrorKind::BadData`].
    ///
    /// [`ErrorKind::Input`]: crate::ErrorKind::Input
    /// [`ErrorKind::BadData`]: crate::ErrorKind::BadData
    pub fn list(input: &Path) -> Result<Self, ImportError> {
        let shown = input.display();
        let metadata = std::fs::metadata(input)
            .map_err(|e| ImportError::input(format!("cannot read the input {shown}: {e}")))?;
        let (archive, mut keyed) = if metadata.is_dir() {
            let mut keyed = Vec::new();
            walk_dir(input, input, &mut keyed)?;
            (None, keyed)
        } else {
            let (archive, keyed) = list_zip(input)?;
            (Some(archive), keyed)
        };
        if keyed.is_empty() {
            return Err(ImportError::input(format!(
                "{shown} holds no {EXTENSION} files (an Amplitude export is a zip or a \
                 directory of <project>_<YYYY-MM-DD>_<H>#<n>{EXTENSION} files)"
            )));
        }
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Self {
            archive,
            files: keyed.into_iter().map(|(_, file)| file).collect(),
        })
    }

    /// The files, in import order.
    pub fn files(&self) -> &[ExportFile] {
        &self.files
    }

    /// Opens the `index`-th file for reading its lines.
    pub fn open(&mut self, index: usize) -> Result<ExportLines<'_>, ImportError> {
        let Some(file) = self.files.get(index) else {
            return Err(ImportError::input(format!(
                "export file {index} of {} does not exist",
                self.files.len()
            )));
        };
        let name = file.name.clone();
        let compressed: Box<dyn Read + '_> = match (&file.location, self.archive.as_mut()) {
            (Location::Path(path), _) => Box::new(
                File::open(path)
                    .map_err(|e| ImportError::input(format!("cannot open {name}: {e}")))?,
            ),
            (Location::ZipEntry(entry), Some(archive)) => Box::new(
                archive
                    .by_index(*entry)
                    .map_err(|e| ImportError::bad_data(format!("cannot read {name}: {e}")))?,
            ),
            (Location::ZipEntry(_), None) => {
                return Err(ImportError::input(format!(
                    "{name}: no zip archive is open"
                )));
            }
        };
        Ok(ExportLines {
            name,
            reader: BufReader::with_capacity(1 << 16, MultiGzDecoder::new(compressed)),
            line_number: 0,
        })
    }
}

/// The decompressed lines of one export file.
pub struct ExportLines<'a> {
    name: String,
    reader: BufReader<MultiGzDecoder<Box<dyn Read + 'a>>>,
    line_number: u64,
}

impl ExportLines<'_> {
    /// The file's name, as errors show it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads the next non-blank line into `line` (without its line break) and returns its
    /// 1-based number; `None` at the end. A gzip stream that cannot be decompressed is a
    /// [`ErrorKind::BadData`](crate::ErrorKind::BadData) error naming the file.
    pub fn next_line(&mut self, line: &mut Vec<u8>) -> Result<Option<u64>, ImportError> {
        loop {
            line.clear();
            let read = self.reader.read_until(b'\n', line).map_err(|e| {
                ImportError::bad_data(format!(
                    "{}: corrupt gzip data after line {}: {e}",
                    self.name, self.line_number
                ))
            })?;
            if read == 0 {
                return Ok(None);
            }
            self.line_number += 1;
            while matches!(line.last(), Some(b'\n' | b'\r')) {
                line.pop();
            }
            if !line.iter().all(u8::is_ascii_whitespace) {
                return Ok(Some(self.line_number));
            }
        }
    }
}

/// Sorts files as their Amplitude names say (other names after those), then by path.
type SortKey = (bool, Option<(String, String, u32, u32)>, String, String);

fn sort_key(path_in_export: &str) -> SortKey {
    let base = path_in_export
        .rsplit('/')
        .next()
        .unwrap_or(path_in_export)
        .to_string();
    let amplitude_key = amplitude_name_key(&base);
    (
        amplitude_key.is_none(),
        amplitude_key,
        base,
        path_in_export.to_string(),
    )
}

/// `<project>_<YYYY-MM-DD>_<H>#<n>.json.gz` as (project, day, hour, n).
fn amplitude_name_key(base: &str) -> Option<(String, String, u32, u32)> {
    let stem = base.strip_suffix(EXTENSION)?;
    let (prefix, part) = stem.rsplit_once('#')?;
    let mut pieces = prefix.rsplitn(3, '_');
    let hour = pieces.next()?.parse().ok()?;
    let day = pieces.next()?.to_string();
    let project = pieces.next()?.to_string();
    Some((project, day, hour, part.parse().ok()?))
}

fn is_hidden(component: &str) -> bool {
    component.starts_with('.') || component.starts_with('_')
}

fn walk_dir(
    root: &Path,
    dir: &Path,
    found: &mut Vec<(SortKey, ExportFile)>,
) -> Result<(), ImportError> {
    let unreadable = |e: std::io::Error| {
        ImportError::input(format!("cannot read the directory {}: {e}", dir.display()))
    };
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        if is_hidden(file_name) {
            continue;
        }
        let path = entry.path();
        // symbolic links to files are followed, to directories not (no cycles)
        if entry.file_type().map_err(unreadable)?.is_dir() {
            walk_dir(root, &path, found)?;
            continue;
        }
        if !file_name.ends_with(EXTENSION) {
            continue;
        }
        let metadata = std::fs::metadata(&path)
            .map_err(|e| ImportError::input(format!("cannot read {}: {e}", path.display())))?;
        if !metadata.is_file() {
            continue;
        }
        let relative = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        found.push((
            sort_key(&relative),
            ExportFile {
                name: path.display().to_string(),
                compressed_bytes: metadata.len(),
                location: Location::Path(path),
            },
        ));
    }
    Ok(())
}

type ZipListing = (ZipArchive<BufReader<File>>, Vec<(SortKey, ExportFile)>);

fn list_zip(input: &Path) -> Result<ZipListing, ImportError> {
    let shown = input.display();
    let mut file = File::open(input)
        .map_err(|e| ImportError::input(format!("cannot open the input {shown}: {e}")))?;
    let mut magic = [0_u8; 2];
    let starts_like_zip = file.read_exact(&mut magic).is_ok() && &magic == b"PK";
    if !starts_like_zip {
        return Err(ImportError::input(format!(
            "{shown} is neither a zip file nor a directory (an Amplitude export is the zip the \
             Export API returns, or a directory of its .json.gz files)"
        )));
    }
    let file = File::open(input)
        .map_err(|e| ImportError::input(format!("cannot open the input {shown}: {e}")))?;
    let mut archive = ZipArchive::new(BufReader::new(file))
        .map_err(|e| ImportError::bad_data(format!("{shown}: corrupt zip file: {e}")))?;
    let mut found = Vec::new();
    for index in 0..archive.len() {
        let entry = archive
            .by_index_raw(index)
            .map_err(|e| ImportError::bad_data(format!("{shown}: corrupt zip file: {e}")))?;
        let entry_name = entry
            .name()
            .map_err(|e| ImportError::bad_data(format!("{shown}: corrupt zip file: {e}")))?
            .into_owned();
        if entry.is_dir()
            || !entry_name.ends_with(EXTENSION)
            || entry_name.split('/').any(is_hidden)
        {
            continue;
        }
        let compressed_bytes = entry.compressed_size();
        found.push((
            sort_key(&entry_name),
            ExportFile {
                name: format!("{shown}!/{entry_name}"),
                compressed_bytes,
                location: Location::ZipEntry(index),
            },
        ));
    }
    Ok((archive, found))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amplitude_names_sort_by_day_hour_and_part() {
        let mut names = vec![
            "123/123_2024-01-02_0#0.json.gz",
            "123/123_2024-01-01_10#0.json.gz",
            "123/123_2024-01-01_9#1.json.gz",
            "123/123_2024-01-01_9#0.json.gz",
            "123/other.json.gz",
        ];
        names.sort_by_key(|n| sort_key(n));
        assert_eq!(
            names,
            [
                "123/123_2024-01-01_9#0.json.gz",
                "123/123_2024-01-01_9#1.json.gz",
                "123/123_2024-01-01_10#0.json.gz",
                "123/123_2024-01-02_0#0.json.gz",
                "123/other.json.gz",
            ]
        );
        assert_eq!(
            amplitude_name_key("4_2_1_2024-03-09_23#12.json.gz"),
            Some(("4_2_1".into(), "2024-03-09".into(), 23, 12))
        );
    }
}
