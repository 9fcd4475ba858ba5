//! An image read and checked for showing (`ckpt inspect`, `ckpt list`):
//! its header and metadata, page data not read.

use ckpt::image::{self, Header, Meta, HEADER_LEN};
use std::io::Read;
use std::path::{Path, PathBuf};

/// A checked image: its header and metadata (page data is not read).
pub struct Loaded {
    pub path: PathBuf,
    pub file_bytes: u64,
    pub header: Header,
    pub meta: Meta,
}

/// Read and check an image; every problem is one line naming the file.
pub fn load(path: &Path) -> Result<Loaded, String> {
    let shown = path.display();
    let md = std::fs::metadata(path).map_err(|e| format!("{shown}: {e}"))?;
    if md.is_dir() {
        return Err(format!("{shown}: is a directory, not an image"));
    }
    if !md.is_file() {
        return Err(format!("{shown}: not a regular file"));
    }
    check_header_bounds(path).map_err(|e| format!("{shown}: {e}"))?;
    let (header, meta) = image::read_file(path)?;
    Ok(Loaded {
        path: path.to_path_buf(),
        file_bytes: md.len(),
        header,
        meta,
    })
}

/// `image::read_file` trusts the sizes in a header whose checksum matches,
/// but anybody can compute that checksum: refuse sizes that overflow and
/// metadata that does not follow the header before it slices with them.
/// Headers that do not decode are left to `read_file`, which says why.
fn check_header_bounds(path: &Path) -> Result<(), String> {
    let mut head = Vec::with_capacity(HEADER_LEN);
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    file.take(HEADER_LEN as u64)
        .read_to_end(&mut head)
        .map_err(|e| e.to_string())?;
    let Ok(h) = Header::decode(&head) else {
        return Ok(());
    };
    h.check_layout().map_err(|e| e.to_string())
}
