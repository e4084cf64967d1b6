//! OCI image layout (directory or tarball), for `package --output` and `push --layout`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use super::extract::{self, Manifest};
use super::image::PluginImage;
use super::{Blob, OCI_INDEX};
use crate::fsutil;

/// Annotation naming the tag of a manifest in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The files of a layout, path → bytes, in a fixed order.
fn layout_files(image: &PluginImage, tag: &str) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut files = BTreeMap::new();
    files.insert(
        "oci-layout".to_string(),
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    );
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{
            "mediaType": image.manifest_media_type,
            "digest": image.digest(),
            "size": image.manifest.len(),
            "annotations": { REF_NAME: tag },
        }],
    });
    files.insert("index.json".to_string(), super::canonical_json(&index));
    let blob_path = |digest: &str| format!("blobs/{}", digest.replacen(':', "/", 1));
    files.insert(blob_path(&image.digest()), image.manifest.clone());
    for blob in image.blobs() {
        files.insert(blob_path(&blob.digest), blob.data.clone());
    }
    Ok(files)
}

/// Writes `image` as a layout directory at `dir`, which must not exist yet.
pub fn write_layout_dir(image: &PluginImage, tag: &str, dir: &Path) -> Result<()> {
    if dir.exists() {
        bail!(crate::UserError(format!(
            "{} already exists; remove it or choose another --output",
            dir.display()
        )));
    }
    let parent = fsutil::parent_dir(dir);
    let staging = tempfile::Builder::new()
        .prefix(".weir-partial-")
        .tempdir_in(parent)
        .with_context(|| format!("creating a temporary directory in {}", parent.display()))?;
    for (name, data) in layout_files(image, tag)? {
        let path = staging.path().join(&name);
        std::fs::create_dir_all(fsutil::parent_dir(&path))?;
        std::fs::write(&path, data).with_context(|| format!("writing {name}"))?;
    }
    let staged = staging.keep();
    std::fs::rename(&staged, dir)
        .with_context(|| format!("moving the layout to {}", dir.display()))
        .inspect_err(|_| {
            let _ = std::fs::remove_dir_all(&staged);
        })?;
    Ok(())
}

/// Writes `image` as a layout tarball (the format `skopeo copy oci-archive:` reads).
pub fn write_layout_tar(image: &PluginImage, tag: &str, path: &Path) -> Result<()> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut dirs = std::collections::BTreeSet::new();
    for (name, data) in layout_files(image, tag)? {
        let mut prefix = String::new();
        for part in name
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map(|(_, d)| d)
            .unwrap_or(&[])
        {
            prefix = format!("{prefix}{part}/");
            if dirs.insert(prefix.clone()) {
                let mut header = fixed_header(0, 0o755);
                header.set_entry_type(tar::EntryType::Directory);
                header.set_cksum();
                builder.append_data(&mut header, &prefix, std::io::empty())?;
            }
        }
        let mut header = fixed_header(data.len() as u64, 0o644);
        builder.append_data(&mut header, &name, data.as_slice())?;
    }
    fsutil::write_atomic(path, &builder.into_inner()?)
}

fn fixed_header(size: u64, mode: u32) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_size(size);
    header.set_mode(mode);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header
}

/// Reads a layout directory or tarball written by `weir package`.
pub fn read_layout(path: &Path) -> Result<PluginImage> {
    if path.is_dir() {
        let index = std::fs::read(path.join("index.json")).with_context(|| {
            format!(
                "reading {}/index.json: not an OCI image layout",
                path.display()
            )
        })?;
        let blobs = path.join("blobs");
        return image_from(&index, |d| {
            std::fs::read(blobs.join(d.replacen(':', "/", 1)))
                .with_context(|| format!("reading blob {d}"))
        });
    }
    let mut files = BTreeMap::new();
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    for entry in tar::Archive::new(file).entries()? {
        let mut entry = entry?;
        let name = entry
            .path()?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        let mut data = Vec::new();
        entry.read_to_end(&mut data)?;
        files.insert(name, data);
    }
    let index = files
        .get("index.json")
        .context("no index.json: not an OCI image layout")?;
    image_from(index, |d| {
        files
            .get(&format!("blobs/{}", d.replacen(':', "/", 1)))
            .cloned()
            .with_context(|| format!("blob {d} missing"))
    })
}

fn image_from(index: &[u8], mut blob: impl FnMut(&str) -> Result<Vec<u8>>) -> Result<PluginImage> {
    #[derive(Deserialize)]
    struct Index {
        manifests: Vec<extract::Descriptor>,
    }
    let index: Index = serde_json::from_slice(index).context("index.json is not an OCI index")?;
    let [entry] = index.manifests.as_slice() else {
        bail!(
            "the layout holds {} manifests; weir pushes exactly one",
            index.manifests.len()
        );
    };
    let manifest_bytes = blob(&entry.digest)?;
    let check = |d: &str, data: &[u8]| -> Result<()> {
        if super::sha256_digest(data) != d {
            bail!("blob {d} in the layout does not match its digest");
        }
        Ok(())
    };
    check(&entry.digest, &manifest_bytes)?;
    let manifest: Manifest =
        serde_json::from_slice(&manifest_bytes).context("unreadable manifest")?;
    let format = extract::locate_wasm(&manifest)?.format;
    let mut load = |d: &extract::Descriptor| -> Result<Blob> {
        let data = blob(&d.digest)?;
        check(&d.digest, &data)?;
        Ok(Blob {
            media_type: d.media_type.clone(),
            digest: d.digest.clone(),
            data,
        })
    };
    let config = load(&manifest.config)?;
    let layers = manifest
        .layers
        .iter()
        .map(&mut load)
        .collect::<Result<Vec<_>>>()?;
    Ok(PluginImage {
        format,
        manifest_media_type: entry.media_type.clone(),
        manifest: manifest_bytes,
        config,
        layers,
    })
}
