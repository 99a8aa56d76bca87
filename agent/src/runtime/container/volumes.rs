//! A pod's volumes on the node: emptyDir directories created for the pod (and deleted with
//! it), hostPath checks and creation by the Kubernetes `type`.

use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

use drover_proto::msg::{DesiredPod, VolumeSource};

use super::plan::empty_dir;

/// Creates the pod's emptyDirs and checks (or creates) its hostPaths.
pub fn prepare(pod: &DesiredPod, volumes_dir: &Path) -> Result<(), String> {
    for volume in &pod.volumes {
        match &volume.source {
            VolumeSource::EmptyDir => {
                let dir = empty_dir(volumes_dir, &pod.uid, &volume.name)
                    .map_err(|e| format!("emptyDir volume: {e}"))?;
                // Owned by the pod's fsGroup, whose files then keep the group (setgid).
                let mode = if pod.fs_group.is_some() {
                    0o2777
                } else {
                    0o777
                };
                fs::create_dir_all(&dir)
                    .and_then(|()| std::os::unix::fs::chown(&dir, None, pod.fs_group))
                    .and_then(|()| fs::set_permissions(&dir, fs::Permissions::from_mode(mode)))
                    .map_err(|e| {
                        format!(
                            "cannot create emptyDir volume \"{}\" at {}: {e}",
                            volume.name,
                            dir.display()
                        )
                    })?;
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

/// Deletes the pod's emptyDirs.
pub fn remove(volumes_dir: &Path, pod_uid: &str) {
    match crate::pod_paths::pod_dir(volumes_dir, pod_uid) {
        Ok(dir) => {
            let _ = fs::remove_dir_all(dir);
        }
        Err(e) => tracing::warn!(error = %e, "not removing the pod's emptyDir volumes"),
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
