// Finds libvlmrt: $VLMRT_LIB_DIR when set (a folder holding libvlmrt.so), otherwise `pkg-config --libs vlmrt`
// (set PKG_CONFIG_PATH for an installation outside the default search path). The library folder is also put
// into the binaries' RPATH so that `cargo test` runs without LD_LIBRARY_PATH.
use std::env;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=VLMRT_LIB_DIR");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    let mut dirs: Vec<String> = Vec::new();
    if let Ok(dir) = env::var("VLMRT_LIB_DIR") {
        dirs.push(dir);
    } else {
        let output = Command::new("pkg-config")
            .args(["--libs", "vlmrt"])
            .output()
            .expect("vlmrt: could not run pkg-config; install it or set VLMRT_LIB_DIR to the folder of libvlmrt.so");
        if !output.status.success() {
            panic!(
                "vlmrt: `pkg-config --libs vlmrt` failed: {}; set PKG_CONFIG_PATH to <prefix>/lib/pkgconfig of a \
                 vlmrt installation, or VLMRT_LIB_DIR to the folder of libvlmrt.so",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        for flag in String::from_utf8_lossy(&output.stdout).split_whitespace() {
            if let Some(dir) = flag.strip_prefix("-L") {
                dirs.push(dir.to_string());
            }
        }
    }
    for dir in &dirs {
        println!("cargo:rustc-link-search=native={}", dir);
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir);
    }
    println!("cargo:rustc-link-lib=dylib=vlmrt");
}
