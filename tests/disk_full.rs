//! The disk fills up mid-drill: drillbook stops with a clear error, the
//! journal still replays, and once space is freed the drill resumes to the
//! end. Uses a tiny tmpfs, so it needs root (CI runs as root).

mod support;

use std::process::Command;

use support::{Home, stderr_of, stdout_of};

struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_pauses_the_drill_and_loses_nothing() {
    let home = Home::new();
    let mount_point = home.path().join("small");
    std::fs::create_dir(&mount_point).unwrap();
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"]).arg(&mount_point).status();
    if !mounted.is_ok_and(|s| s.success()) {
        assert!(
            unsafe_euid() != 0,
            "mounting a tmpfs failed although running as root: this test needs `mount -t tmpfs`"
        );
        eprintln!("SKIPPED a_full_disk_pauses_the_drill_and_loses_nothing: needs root to mount a tmpfs (CI runs it)");
        return;
    }
    let _unmount = Tmpfs(mount_point.clone());
    let runbook = home.runbook(
        "full.toml",
        r#"[runbook]
id = "full"
title = "Full disk"
[vars.marker]
prompt = "A file outside the small disk that says it was filled once"
[[step]]
id = "before"
kind = "command"
run = "echo value=kept"
capture = { name = "kept", regex = "^value=(.*)$" }
[[step]]
id = "fill"
kind = "command"
run = "if [ ! -e {{ marker }} ]; then touch {{ marker }}; head -c 1000000 /dev/zero > {{ drill.dir }}/filler; fi; echo filled"
[[step]]
id = "after"
kind = "command"
run = "echo after {{ kept }}"
"#,
    );
    let first = home
        .cmd()
        .env("DRILLBOOK_HOME", &mount_point)
        .args(["run", "--plain", "--yes", "--var"])
        .arg(format!("marker={}", home.path().join("filled-once").display()))
        .arg(&runbook)
        .output()
        .unwrap();
    // Depending on which write hits the full disk first (the step's log or
    // the journal), the step fails (1) or the drill pauses (2); either way
    // the reason is named.
    let all = format!("{}\n{}", stdout_of(&first), stderr_of(&first));
    assert!(matches!(first.status.code(), Some(1 | 2)), "{all}");
    assert!(all.contains("No space left on device"), "{all}");

    let drills: Vec<_> = std::fs::read_dir(mount_point.join("drills")).unwrap().map(|e| e.unwrap().path()).collect();
    let drill = drills[0].clone();
    std::fs::remove_file(drill.join("filler")).unwrap();
    let resumed = home.cmd().env("DRILLBOOK_HOME", &mount_point).args(["resume", "--plain", "--yes"]).output().unwrap();
    let stdout = stdout_of(&resumed);
    assert!(resumed.status.success(), "{stdout}\n{}", stderr_of(&resumed));
    assert!(stdout.contains("  | after kept"), "the capture made before the disk filled is kept: {stdout}");
    let id = drill.file_name().unwrap().to_string_lossy().to_string();
    home.cmd().env("DRILLBOOK_HOME", &mount_point).args(["verify", &id]).assert().success();
}

fn unsafe_euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc_geteuid() }
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}
