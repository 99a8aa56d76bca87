//! What the agent reports about its machine. Paths are read below a root so tests can
//! point it at a fixture.

use std::fs;
use std::path::Path;

/// Facts read from the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineFacts {
    /// Kubernetes architecture name.
    pub architecture: String,
    /// Kernel release.
    pub kernel_version: String,
    /// `PRETTY_NAME` from os-release.
    pub os_image: String,
    /// Device-tree model (Raspberry Pi and other boards).
    pub model: Option<String>,
    /// Memory in bytes.
    pub memory_bytes: u64,
    /// Boot id.
    pub boot_id: String,
}

/// Maps Rust's architecture names to Kubernetes' (`GOARCH`) names.
pub fn kubernetes_arch(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "x86" => "386",
        "riscv64" => "riscv64",
        other => other,
    }
}

fn read_trimmed(root: &Path, path: &str) -> Option<String> {
    let text = fs::read_to_string(root.join(path)).ok()?;
    let text = text.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    (!text.is_empty()).then(|| text.to_string())
}

/// Reads the facts below `root` (`/` on a real machine).
pub fn read_facts(root: &Path) -> MachineFacts {
    let os_image = fs::read_to_string(root.join("etc/os-release"))
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| "unknown".into());
    let memory_bytes = fs::read_to_string(root.join("proc/meminfo"))
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                let kib = l.strip_prefix("MemTotal:")?.trim().strip_suffix("kB")?;
                kib.trim().parse::<u64>().ok()
            })
        })
        .map_or(0, |kib| kib * 1024);
    MachineFacts {
        architecture: kubernetes_arch(std::env::consts::ARCH).to_string(),
        kernel_version: read_trimmed(root, "proc/sys/kernel/osrelease")
            .unwrap_or_else(|| "unknown".into()),
        os_image,
        model: read_trimmed(root, "proc/device-tree/model"),
        memory_bytes,
        boot_id: read_trimmed(root, "proc/sys/kernel/random/boot_id").unwrap_or_default(),
    }
}

/// The machine's hostname, lowercased, as a default node name.
pub fn hostname(root: &Path) -> Option<String> {
    read_trimmed(root, "proc/sys/kernel/hostname")
        .or_else(|| read_trimmed(root, "etc/hostname"))
        .map(|h| h.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_come_from_the_given_root() {
        let root = tempfile::tempdir().unwrap();
        let p = root.path();
        for (path, text) in [
            (
                "etc/os-release",
                "NAME=x\nPRETTY_NAME=\"Raspbian GNU/Linux 11 (bullseye)\"\n",
            ),
            (
                "proc/meminfo",
                "MemTotal:        3884376 kB\nMemFree: 1 kB\n",
            ),
            ("proc/sys/kernel/osrelease", "6.1.21-v8+\n"),
            ("proc/sys/kernel/random/boot_id", "b0a7\n"),
            ("proc/device-tree/model", "Raspberry Pi 4 Model B Rev 1.4\0"),
            ("proc/sys/kernel/hostname", "Pi-Kitchen\n"),
        ] {
            fs::create_dir_all(p.join(path).parent().unwrap()).unwrap();
            fs::write(p.join(path), text).unwrap();
        }
        let facts = read_facts(p);
        assert_eq!(facts.os_image, "Raspbian GNU/Linux 11 (bullseye)");
        assert_eq!(facts.memory_bytes, 3884376 * 1024);
        assert_eq!(facts.kernel_version, "6.1.21-v8+");
        assert_eq!(
            facts.model.as_deref(),
            Some("Raspberry Pi 4 Model B Rev 1.4")
        );
        assert_eq!(facts.boot_id, "b0a7");
        assert_eq!(hostname(p).as_deref(), Some("pi-kitchen"));
    }

    #[test]
    fn missing_files_give_defaults_not_errors() {
        let root = tempfile::tempdir().unwrap();
        let facts = read_facts(root.path());
        assert_eq!(facts.model, None);
        assert_eq!(facts.memory_bytes, 0);
    }

    #[test]
    fn architectures_use_kubernetes_names() {
        assert_eq!(kubernetes_arch("aarch64"), "arm64");
        assert_eq!(kubernetes_arch("x86_64"), "amd64");
        assert_eq!(kubernetes_arch("arm"), "arm");
    }
}
