//! A pod's volumes on the node: emptyDir directories created for the pod (and deleted with
//! it), hostPath checks and creation by the Kubernetes `type`.

use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

use drover_proto::msg::{DesiredPod, VolumeSource};

use super::plan::{empty_dir, memory_dir, MEMORY_VOLUMES_ROOT};

/// Creates the pod's emptyDirs and checks (or creates) its hostPaths.
pub fn prepare(pod: &DesiredPod, volumes_dir: &Path) -> Result<(), String> {
    for volume in &pod.volumes {
        match &volume.source {
            VolumeSource::EmptyDir | VolumeSource::MemoryDir => {
                let dir = match volume.source {
                    VolumeSource::EmptyDir => empty_dir(volumes_dir, &pod.uid, &volume.name),
                    _ => {
                        memory_root_is_private(Path::new(MEMORY_VOLUMES_ROOT), volumes_dir)?;
                        memory_dir(&pod.uid, &volume.name)
                    }
                }
                .map_err(|e| format!("emptyDir volume: {e}"))?;
                fs::create_dir_all(&dir)
                    .and_then(|()| fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)))
                    .map_err(|e| {
                        format!(
                            "cannot create emptyDir volume \"{}\" at {}: {e}",
                            volume.name,
                            dir.display()
                        )
                    })?;
                if let Some(group) = pod.fs_group {
                    // Owned by the pod's fsGroup, whose files then keep the group (setgid).
                    // An agent that may not give the group away leaves it writable to all.
                    let owned = std::os::unix::fs::chown(&dir, None, Some(group)).and_then(|()| {
                        fs::set_permissions(&dir, fs::Permissions::from_mode(0o2777))
                    });
                    if let Err(e) = owned {
                        tracing::warn!(pod = %pod.name, volume = %volume.name, error = %e, "the emptyDir is not given to the pod's fsGroup");
                    }
                }
            }
            VolumeSource::HostPath { path, kind } => {
                check_host_path(Path::new(path), kind)
                    .map_err(|e| format!("hostPath volume \"{}\": {e}", volume.name))?;
            }
        }
    }
    Ok(())
}

fn check_host_path(path: &Path, kind: &str) -> Result<(), String> {
    let shown = path.display();
    let meta = fs::metadata(path);
    match kind {
        "DirectoryOrCreate" => {
            fs::create_dir_all(path).map_err(|e| format!("cannot create directory {shown}: {e}"))
        }
        "FileOrCreate" => fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map(drop)
            .map_err(|e| format!("cannot create file {shown}: {e}")),
        "Directory" => match meta {
            Ok(m) if m.is_dir() => Ok(()),
            _ => Err(format!("{shown} is not a directory")),
        },
        "File" => match meta {
            Ok(m) if m.is_file() => Ok(()),
            _ => Err(format!("{shown} is not a file")),
        },
        "Socket" => match meta {
            Ok(m) if m.file_type().is_socket() => Ok(()),
            _ => Err(format!("{shown} is not a socket")),
        },
        _ => Ok(()),
    }
}

/// Creates [`MEMORY_VOLUMES_ROOT`] (0700), and makes sure it is the agent's own: `/dev/shm`
/// is open to every local user, who could otherwise plant a directory or a link there for
/// the agent to create volumes in and open to all.
fn memory_root_is_private(root: &Path, volumes_dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let refused = |why: String| format!("memory-backed emptyDir: {}: {why}", root.display());
    crate::private_fs::create_dir_all(root).map_err(|e| refused(e.to_string()))?;
    let found = fs::symlink_metadata(root).map_err(|e| refused(e.to_string()))?;
    // The agent's data directory is its own: whoever owns it is the agent.
    let data_dir = volumes_dir.parent().unwrap_or(volumes_dir);
    let agent = fs::metadata(data_dir)
        .map_err(|e| refused(e.to_string()))?
        .uid();
    if !found.is_dir() || found.uid() != agent {
        return Err(refused(
            "not a directory of the agent's own; remove it".into(),
        ));
    }
    if found.mode() & 0o077 != 0 {
        fs::set_permissions(root, fs::Permissions::from_mode(0o700))
            .map_err(|e| refused(e.to_string()))?;
    }
    Ok(())
}

/// Deletes the pod's emptyDirs, on disk and in memory.
pub fn remove(volumes_dir: &Path, pod_uid: &str) {
    for root in [volumes_dir, Path::new(MEMORY_VOLUMES_ROOT)] {
        match crate::pod_paths::pod_dir(root, pod_uid) {
            Ok(dir) => {
                let _ = fs::remove_dir_all(dir);
            }
            Err(e) => tracing::warn!(error = %e, "not removing the pod's emptyDir volumes"),
        }
    }
}

#[cfg(test)]
mod tests {
    use drover_proto::msg::DesiredVolume;

    use super::*;

    fn pod_with(source: VolumeSource) -> DesiredPod {
        DesiredPod {
            uid: "u1".into(),
            volumes: vec![DesiredVolume {
                name: "v".into(),
                source,
            }],
            ..DesiredPod::default()
        }
    }

    fn host(path: &Path, kind: &str) -> VolumeSource {
        VolumeSource::HostPath {
            path: path.to_string_lossy().into_owned(),
            kind: kind.into(),
        }
    }

    #[test]
    fn a_memory_root_planted_by_someone_else_is_refused() {
        let data = tempfile::tempdir().unwrap();
        let volumes = data.path().join("volumes");
        let shm = tempfile::tempdir().unwrap();
        let root = shm.path().join("drover");
        memory_root_is_private(&root, &volumes).unwrap();
        let mode = fs::metadata(&root).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        // Loosened by someone: tightened again.
        fs::set_permissions(&root, fs::Permissions::from_mode(0o777)).unwrap();
        memory_root_is_private(&root, &volumes).unwrap();
        assert_eq!(
            fs::metadata(&root).unwrap().permissions().mode() & 0o777,
            0o700
        );
        // A link to elsewhere is not followed.
        let elsewhere = shm.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        let planted = shm.path().join("planted");
        std::os::unix::fs::symlink(&elsewhere, &planted).unwrap();
        let refused = memory_root_is_private(&planted, &volumes).unwrap_err();
        assert!(
            refused.contains("not a directory of the agent's own"),
            "{refused}"
        );
    }

    #[test]
    fn empty_dirs_are_created_writable_and_removed_with_the_pod() {
        let root = tempfile::tempdir().unwrap();
        prepare(&pod_with(VolumeSource::EmptyDir), root.path()).unwrap();
        let dir = root.path().join("u1/v");
        let mode = fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o777);
        remove(root.path(), "u1");
        assert!(!root.path().join("u1").exists());
    }

    #[test]
    fn hostile_uids_create_and_delete_nothing_outside_the_volumes_dir() {
        let data = tempfile::tempdir().unwrap();
        let volumes = data.path().join("volumes");
        let victim = data.path().join("etc");
        fs::create_dir_all(victim.join("keep")).unwrap();
        fs::create_dir_all(&volumes).unwrap();
        for uid in ["../etc", "../../etc", "a/b", "..", ""] {
            let pod = DesiredPod {
                uid: uid.into(),
                ..pod_with(VolumeSource::EmptyDir)
            };
            assert!(prepare(&pod, &volumes).is_err(), "{uid:?}");
            remove(&volumes, uid);
            assert!(victim.join("keep").is_dir(), "{uid:?} deleted outside");
        }
        assert!(!data.path().join("v").exists());
        assert_eq!(fs::read_dir(&volumes).unwrap().count(), 0);
        remove(&volumes, "..");
        assert!(
            volumes.is_dir(),
            "\"..\" must not remove the volumes dir itself"
        );
    }

    #[test]
    fn host_path_types_are_checked_or_created() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("dir");
        let file = root.path().join("file");
        fs::create_dir(&dir).unwrap();
        fs::write(&file, b"x").unwrap();
        let missing = root.path().join("missing");
        let cases = [
            (dir.clone(), "Directory", true),
            (file.clone(), "Directory", false),
            (missing.clone(), "Directory", false),
            (file.clone(), "File", true),
            (dir.clone(), "File", false),
            (file.clone(), "Socket", false),
            (missing.clone(), "", true),
            (root.path().join("made/deep"), "DirectoryOrCreate", true),
            (root.path().join("new-file"), "FileOrCreate", true),
        ];
        for (path, kind, ok) in cases {
            let result = prepare(&pod_with(host(&path, kind)), root.path());
            assert_eq!(result.is_ok(), ok, "{} {kind}: {result:?}", path.display());
        }
        assert!(root.path().join("made/deep").is_dir());
        assert!(root.path().join("new-file").is_file());
    }
}
