//! The top of an agency's archive on object storage
//! (`s3://bucket/prefix/<connection id>/`, one complete archive each):
//! `connections.json` and `index.html` as objects at the prefix, written
//! after a run of many connections, and the rows `status` prints. The same
//! page and registry as on a local disk (`archive::agency`).
//!
//! Each connection's figures come from its local state database, restored
//! from its snapshot in the bucket where this machine has none (a
//! connection another shard mirrors).

use object_store::PutPayload;
use vault_mirror::archive::agency::{self, ConnectionRow, Registered};
use vault_mirror::archive::bucket::Bucket;
use vault_mirror::archive::bucket::s3::WriteMode;
use vault_mirror::archive::bucket::snapshot::restore_snapshot;
use vault_mirror::archive::export::GALLERY;
use vault_mirror::settings::Settings;

/// After a run of many connections on object storage: the registry,
/// with `connections` (this run's) added, and the page, at the prefix.
pub async fn write(base: &Settings, connections: &[Registered]) -> anyhow::Result<()> {
    let Some(url) = &base.bucket else {
        return Ok(());
    };
    let archive = Bucket::open(url)?;
    let entries = agency::merged(registry(&archive).await?, connections);
    let text = agency::registry_text(&entries);
    archive
        .put(
            agency::REGISTRY,
            PutPayload::from(text.into_bytes()),
            "application/json",
            None,
            WriteMode::Overwrite,
        )
        .await?;
    let rows = rows_of(base, &entries).await?;
    let page = agency::render(&rows, vault_mirror::now_ms());
    archive
        .put(
            agency::INDEX,
            PutPayload::from(page.into_bytes()),
            "text/html; charset=utf-8",
            None,
            WriteMode::Overwrite,
        )
        .await?;
    Ok(())
}

/// The rows of the agency's archive at `base.bucket`, or `None` when the
/// prefix holds no registry (it is no agency's archive).
pub async fn read(base: &Settings) -> anyhow::Result<Option<Vec<ConnectionRow>>> {
    let Some(url) = &base.bucket else {
        return Ok(None);
    };
    let archive = Bucket::open(url)?;
    let entries = registry(&archive).await?;
    if entries.is_empty() {
        return Ok(None);
    }
    Ok(Some(rows_of(base, &entries).await?))
}

/// The registry object at the prefix (empty when there is none or it
/// cannot be read: it only names things).
async fn registry(archive: &Bucket) -> anyhow::Result<Vec<Registered>> {
    Ok(archive
        .read_all(agency::REGISTRY)
        .await?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default())
}

/// The settings of every connection of the agency's archive at
/// `base.bucket`, each with its local database (restored from its
/// snapshot where this machine has none), or `None` when the prefix holds
/// no registry.
pub async fn connections(base: &Settings) -> anyhow::Result<Option<Vec<Settings>>> {
    let Some(url) = &base.bucket else {
        return Ok(None);
    };
    let entries = registry(&Bucket::open(url)?).await?;
    if entries.is_empty() {
        return Ok(None);
    }
    let mut found = Vec::new();
    for entry in &entries {
        let (settings, _) = restored(base, entry).await?;
        found.push(settings);
    }
    Ok(Some(found))
}

/// Connection `entry`'s settings and archive, its local database restored
/// from its snapshot first where this machine has none.
async fn restored(
    base: &Settings,
    entry: &Registered,
) -> anyhow::Result<(Settings, Option<Bucket>)> {
    let settings = base.for_connection(&entry.id)?;
    let Some(url) = &settings.bucket else {
        return Ok((settings, None));
    };
    let archive = Bucket::open(url)?;
    if !settings.db.exists() {
        restore_snapshot(&archive, &settings.db).await?;
    }
    Ok((settings, Some(archive)))
}

/// Each registered connection's row, from its local database (restored
/// from its snapshot first where this machine has none).
async fn rows_of(base: &Settings, entries: &[Registered]) -> anyhow::Result<Vec<ConnectionRow>> {
    let mut rows = Vec::new();
    for entry in entries {
        let (settings, archive) = restored(base, entry).await?;
        let Some(archive) = archive else {
            continue;
        };
        let gallery = archive.head(GALLERY).await?.is_some();
        rows.extend(agency::row(entry.clone(), &settings.db, gallery)?);
    }
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(rows)
}
