//! The keeper: a small process that holds a process pod's main process for the agent, so
//! the pod outlives an agent restart or upgrade and its exit status is not lost.
//!
//! Only the parent may collect a process's exit status. If the agent were the parent, a
//! pod that ended while the agent was down would have no exit code, and a Job could not
//! tell success from failure. So the agent starts the keeper (its own binary, run with
//! [`KEEPER_ARG`]), the keeper starts the pod's command and waits for it, writes how it
//! ended into the status file the agent gave it on [`STATUS_FD`], and then kills what is
//! left of the pod's process group, itself included. A new agent finds the keeper by pid
//! and start time and waits for it through a pidfd.
//!
//! The keeper leads the pod's process group: the agent's SIGTERM reaches every process of
//! the pod, and the keeper, which only catches it, keeps waiting. SIGKILL ends the keeper
//! too; the agent then knows the pod was killed. The keeper runs before anything else in
//! the agent's `main`, so it costs one small process per running container.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::FromRawFd;
use std::os::unix::fs::FileExt;
use std::os::unix::process::CommandExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitCode};

use nix::sys::signal::{killpg, sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::getpgrp;

/// The first argument that makes the agent's binary a keeper.
pub const KEEPER_ARG: &str = "__drover-keeper";
/// The first argument that makes it say it can be one ([`can_keep`]).
const PROBE_ARG: &str = "__drover-keeper-probe";
const PROBE_ANSWER: &str = "drover-keeper ready";
/// The keeper's `argv[0]`, and its name in `ps`.
pub const KEEPER_NAME: &str = "drover-keeper";
/// The descriptor on which the keeper finds its status file.
pub const STATUS_FD: i32 = 3;
/// Bytes the agent reserves in a status file (blank lines until the keeper writes it): the
/// keeper then writes into storage it has, even on a full disk. Longer messages are cut.
pub const STATUS_ROOM: usize = 512;

/// How a kept process ended, as the keeper writes it into its status file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeptStatus {
    /// The process ran and ended: its exit code (128+N for signal N) and killing signal.
    Exited {
        /// Exit code, 128+N when signal N killed it.
        code: i32,
        /// The killing signal, or 0.
        signal: i32,
    },
    /// The command could not be started; why, for users.
    CannotRun(String),
}

impl KeptStatus {
    /// How a process ended, from its wait status.
    pub fn of(exit: &std::process::ExitStatus) -> KeptStatus {
        match (exit.code(), exit.signal()) {
            (Some(code), _) => KeptStatus::Exited { code, signal: 0 },
            (None, Some(signal)) => KeptStatus::Exited {
                code: 128 + signal,
                signal,
            },
            (None, None) => KeptStatus::Exited {
                code: 255,
                signal: 0,
            },
        }
    }

    /// The status file's text.
    pub fn render(&self) -> String {
        match self {
            KeptStatus::Exited { code, signal } => format!("exit {code} {signal}\n"),
            KeptStatus::CannotRun(message) => format!("error {}\n", message.replace('\n', " ")),
        }
    }

    /// Reads a status file's text; `None` while the kept process runs (the file is empty)
    /// or when the text is not the keeper's.
    pub fn parse(text: &str) -> Option<KeptStatus> {
        // The keeper writes over reserved blank lines; a cut it did not get to finish leaves
        // some of them after its line.
        let (line, rest) = text.split_once('\n')?;
        if !rest.bytes().all(|b| b == b'\n') {
            return None;
        }
        if let Some(message) = line.strip_prefix("error ") {
            return Some(KeptStatus::CannotRun(message.to_string()));
        }
        let mut fields = line.strip_prefix("exit ")?.split(' ');
        let code = fields.next()?.parse().ok()?;
        let signal = fields.next()?.parse().ok()?;
        fields
            .next()
            .is_none()
            .then_some(KeptStatus::Exited { code, signal })
    }
}

/// Runs the keeper when the process was started as one (`<binary> __drover-keeper
/// <program> <args>…`); returns `None` otherwise. Call it first thing in `main`.
pub fn main_if_keeper() -> Option<ExitCode> {
    let mut args = std::env::args_os();
    args.next();
    match args.next() {
        Some(arg) if arg == OsStr::new(KEEPER_ARG) => {}
        Some(arg) if arg == OsStr::new(PROBE_ARG) => {
            println!("{PROBE_ANSWER}");
            return Some(ExitCode::SUCCESS);
        }
        _ => return None,
    }
    let program = args.next()?;
    Some(keep(program, args.collect()))
}

extern "C" fn caught(_: nix::libc::c_int) {}

#[allow(unsafe_code)]
fn keep(program: OsString, args: Vec<OsString>) -> ExitCode {
    // SAFETY: the agent opened the status file on STATUS_FD for this process; nothing else
    // in this process owns that descriptor. fcntl checks that it is open before it is used.
    let status_open = unsafe { nix::libc::fcntl(STATUS_FD, nix::libc::F_GETFD) } >= 0;
    if !status_open {
        eprintln!("{KEEPER_NAME}: no status file on descriptor {STATUS_FD}");
        return ExitCode::from(127);
    }
    // SAFETY: as above; from here the File owns the descriptor.
    let status_file = unsafe { File::from_raw_fd(STATUS_FD) };
    // The pod must not inherit the status file.
    // SAFETY: fcntl on a descriptor this process owns.
    unsafe { nix::libc::fcntl(STATUS_FD, nix::libc::F_SETFD, nix::libc::FD_CLOEXEC) };
    let _ = nix::sys::prctl::set_name(c"drover-keeper");

    // Signals for the pod reach the whole group; the keeper only notes them. A handler (not
    // SIG_IGN) is reset by exec, so the pod's command gets the default dispositions.
    let note = SigAction::new(
        SigHandler::Handler(caught),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // Every signal whose default is to end the process, that a pod may send its group.
    for signal in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGALRM,
        Signal::SIGPROF,
        Signal::SIGVTALRM,
        Signal::SIGXCPU,
        Signal::SIGXFSZ,
        Signal::SIGIO,
        Signal::SIGPWR,
        Signal::SIGPIPE,
        Signal::SIGSTKFLT,
    ] {
        // SAFETY: the handler does nothing, which is async-signal-safe.
        let _ = unsafe { sigaction(signal, &note) };
    }
    for signal in nix::libc::SIGRTMIN()..=nix::libc::SIGRTMAX() {
        // SAFETY: as above; sigaction(2) on a real-time signal number the libc reports.
        unsafe {
            let mut action: nix::libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = caught as *const () as nix::libc::sighandler_t;
            action.sa_flags = nix::libc::SA_RESTART;
            nix::libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }

    let status = match Command::new(&program).args(&args).spawn() {
        Err(e) => KeptStatus::CannotRun(describe_spawn_error(&program, &e)),
        Ok(mut child) => match child.wait() {
            Ok(exit) => KeptStatus::of(&exit),
            Err(_) => KeptStatus::Exited {
                code: 255,
                signal: 0,
            },
        },
    };
    let text = status.render();
    let _ = status_file
        .write_all_at(fit(&text).as_bytes(), 0)
        .and_then(|()| status_file.set_len(fit(&text).len() as u64));
    drop(status_file);
    // The main process is gone: nothing of the pod may keep running, the keeper included.
    let _ = killpg(getpgrp(), Signal::SIGKILL);
    ExitCode::SUCCESS
}

/// Whether `binary` can run as a keeper here. Under an emulator (qemu-user without
/// binfmt_misc) the agent's own binary cannot be started again, and pods then run as the
/// agent's children, dying with it.
pub fn can_keep(binary: &std::path::Path) -> bool {
    Command::new(binary)
        .arg0(KEEPER_NAME)
        .arg(PROBE_ARG)
        .env_clear()
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .is_ok_and(|out| {
            out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == PROBE_ANSWER
        })
}

/// The status text within [`STATUS_ROOM`], still one line.
fn fit(text: &str) -> String {
    if text.len() <= STATUS_ROOM {
        return text.to_string();
    }
    let mut end = STATUS_ROOM - 1;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n", &text[..end])
}

/// Kubernetes' wording for a command that cannot start.
pub fn describe_spawn_error(program: &OsStr, error: &io::Error) -> String {
    let program = program.to_string_lossy();
    match error.kind() {
        io::ErrorKind::NotFound => format!("exec \"{program}\": no such file or directory"),
        io::ErrorKind::PermissionDenied => format!("exec \"{program}\": permission denied"),
        _ => format!("exec \"{program}\": {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_back_as_written() {
        for status in [
            KeptStatus::Exited { code: 0, signal: 0 },
            KeptStatus::Exited {
                code: 137,
                signal: 9,
            },
            KeptStatus::CannotRun("exec \"x\": no such file or directory".into()),
        ] {
            assert_eq!(KeptStatus::parse(&status.render()), Some(status));
        }
    }

    #[test]
    fn a_running_or_foreign_status_file_reads_as_nothing() {
        for text in [
            "",
            "exit 0 0",
            "exit 1\n",
            "exit a 0\n",
            "exit 0 0 0\n",
            "hi\n",
        ] {
            assert_eq!(KeptStatus::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn a_long_message_fits_the_reserved_room() {
        let status = KeptStatus::CannotRun("é".repeat(400));
        let text = fit(&status.render());
        assert!(text.len() <= STATUS_ROOM);
        assert!(matches!(
            KeptStatus::parse(&text),
            Some(KeptStatus::CannotRun(_))
        ));
        let blank = "\n".repeat(STATUS_ROOM);
        assert_eq!(
            KeptStatus::parse(&blank),
            None,
            "a reserved file reads as running"
        );
    }

    #[test]
    fn a_status_written_over_reserved_lines_reads_back() {
        assert_eq!(
            KeptStatus::parse("exit 0 0\n\n\n\n"),
            Some(KeptStatus::Exited { code: 0, signal: 0 })
        );
        assert_eq!(
            KeptStatus::parse("error no\n\n\n"),
            Some(KeptStatus::CannotRun("no".into()))
        );
        assert_eq!(KeptStatus::parse("exit 0 0\nexit 1 0\n"), None);
    }

    #[test]
    fn a_message_stays_on_one_line() {
        let status = KeptStatus::CannotRun("two\nlines".into());
        assert_eq!(status.render(), "error two lines\n");
    }
}
