//! Ties `src/abi.rs` to the kernel under test: when `HMMLAB_UAPI_HEADER`
//! names that kernel's `lib/test_hmm_uapi.h`, generate compile-time checks
//! (`$OUT_DIR/uapi_check.rs`, included by `src/abi.rs`) that fail the build
//! if an ioctl number, the command struct's layout, a snapshot value or a
//! flag differs, and that record which of the newer commands the header
//! defines. Without it (plain host builds and tests) the checks are empty
//! and nothing is known about the newer commands.

use std::env;
use std::fs;
use std::path::PathBuf;

include!("src/uapi_header.rs");

const HEADER_ENV: &str = "HMMLAB_UAPI_HEADER";

fn main() {
    println!("cargo:rerun-if-env-changed={HEADER_ENV}");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/uapi_header.rs");

    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let out = out_dir.join("uapi_check.rs");

    let checks = match env::var_os(HEADER_ENV).filter(|v| !v.is_empty()) {
        None => {
            println!(
                "cargo:warning=ioctl ABI in src/abi.rs not checked against lib/test_hmm_uapi.h: \
                 set {HEADER_ENV} to the header of the kernel under test"
            );
            UNCHECKED.to_string()
        }
        Some(path) => {
            let path = PathBuf::from(path);
            println!("cargo:rerun-if-changed={}", path.display());
            let shown = path.display().to_string();
            let text = fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{HEADER_ENV}={shown}: cannot read the header: {e}"));
            let header = parse_uapi_header(&text)
                .unwrap_or_else(|e| panic!("{HEADER_ENV}={shown}: cannot parse the header: {e}"));
            render_checks(&header, &shown).unwrap_or_else(|e| panic!("{HEADER_ENV}={shown}: {e}"))
        }
    };
    fs::write(&out, checks).unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}
