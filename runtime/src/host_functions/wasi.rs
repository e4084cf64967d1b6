//! WASI preview1, implemented here for what proxy-wasm guests import: environment variables
//! (the VM's `env`), arguments (none for plugins), clocks (the virtual clock), randomness (seeded,
//! reproducible), stdout/stderr (captured as logs, at info and error like Envoy) and
//! `proc_exit`; file system calls return proper errnos, as a proxy grants no files.
//!
//! Why not `wasmtime-wasi`: it adds minutes to every clean CI build (measured here: ~13 min
//! for wasmtime + wasmtime-wasi against ~7.5 min for trimmed wasmtime alone), implements
//! preview1 as a layer over preview2 with real clocks and files, and would need adapting to
//! the virtual clock and log capture anyway. Any other preview1 function a module imports
//! is linked as a stub returning `ENOSYS` (see `engine::linker_for`).

use wasmtime::{Caller, Linker};
use weir_abi::errno::{BADF, FAULT, INVAL, NOTSUP, SUCCESS};
use weir_abi::{LogLevel, Status};

use crate::host_functions::{read, write, write_u32, write_u64, Fault, HostResult};
use crate::state::HostState;

const MODULE: &str = weir_abi::WASI_MODULE;

/// Preview1 functions implemented here; other preview1 imports get `ENOSYS` stubs.
pub(crate) const FUNCTIONS: &[&str] = &[
    "args_get",
    "args_sizes_get",
    "environ_get",
    "environ_sizes_get",
    "clock_res_get",
    "clock_time_get",
    "fd_write",
    "fd_read",
    "fd_close",
    "fd_seek",
    "fd_fdstat_get",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "path_open",
    "proc_exit",
    "random_get",
    "sched_yield",
    "poll_oneoff",
];

/// Maps a host result to a WASI errno: bad pointers are `EFAULT`.
fn errno(result: HostResult) -> wasmtime::Result<i32> {
    match result {
        Ok(()) => Ok(i32::from(SUCCESS)),
        Err(Fault::Status(Status::InvalidMemoryAccess)) => Ok(i32::from(FAULT)),
        Err(Fault::Status(_)) => Ok(i32::from(INVAL)),
        Err(Fault::Trap(error)) => Err(error),
    }
}

fn args(state: &HostState) -> Vec<Vec<u8>> {
    state
        .wasi
        .args
        .iter()
        .map(|arg| format!("{arg}\0").into_bytes())
        .collect()
}

fn environ(state: &HostState) -> Vec<Vec<u8>> {
    state
        .wasi
        .env
        .iter()
        .map(|(k, v)| format!("{k}={v}\0").into_bytes())
        .collect()
}

/// Writes a C `argv`/`environ` style array: pointers at `array_ptr`, strings at `buf_ptr`.
fn write_strings(
    caller: &mut Caller<'_, HostState>,
    strings: &[Vec<u8>],
    array_ptr: u32,
    buf_ptr: u32,
) -> HostResult {
    let mut offset = buf_ptr;
    for (index, string) in strings.iter().enumerate() {
        let slot = array_ptr
            .checked_add(index as u32 * 4)
            .ok_or(Status::InvalidMemoryAccess)?;
        write_u32(caller, slot, offset)?;
        write(caller, offset, string)?;
        offset = offset
            .checked_add(string.len() as u32)
            .ok_or(Status::InvalidMemoryAccess)?;
    }
    Ok(())
}

fn next_random(state: &mut HostState) -> u64 {
    // xorshift64*: fast, deterministic, and good enough for what guests seed from it.
    let mut x = state.wasi.rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    state.wasi.rng = x;
    x.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// `proc_exit`: ends the guest's execution with a code. A plugin calling it crashes (its
/// callback traps); a command exits with the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcExit(pub(crate) u32);

impl std::fmt::Display for ProcExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "guest called proc_exit({})", self.0)
    }
}

impl std::error::Error for ProcExit {}

fn host_terminal(fd: u32) -> bool {
    use std::io::IsTerminal;
    match fd {
        1 => std::io::stdout().is_terminal(),
        2 => std::io::stderr().is_terminal(),
        _ => false,
    }
}

/// A command's output, straight to the host's stream (errors there are the host's
/// terminal's business, not the guest's).
fn inherit_write(fd: u32, bytes: &[u8]) {
    use std::io::Write;
    let _ = if fd == 1 {
        let mut out = std::io::stdout().lock();
        out.write_all(bytes).and_then(|()| out.flush())
    } else {
        let mut err = std::io::stderr().lock();
        err.write_all(bytes).and_then(|()| err.flush())
    };
}

pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        MODULE,
        "args_sizes_get",
        |mut caller: Caller<'_, HostState>, argc: u32, size: u32| {
            let strings = args(caller.data());
            let total: usize = strings.iter().map(Vec::len).sum();
            errno(
                write_u32(&mut caller, argc, strings.len() as u32)
                    .and_then(|()| write_u32(&mut caller, size, total as u32)),
            )
        },
    )?;
    linker.func_wrap(
        MODULE,
        "args_get",
        |mut caller: Caller<'_, HostState>, argv: u32, buf: u32| {
            let strings = args(caller.data());
            errno(write_strings(&mut caller, &strings, argv, buf))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "environ_sizes_get",
        |mut caller: Caller<'_, HostState>, count: u32, size: u32| {
            let strings = environ(caller.data());
            let total: usize = strings.iter().map(Vec::len).sum();
            errno(
                write_u32(&mut caller, count, strings.len() as u32)
                    .and_then(|()| write_u32(&mut caller, size, total as u32)),
            )
        },
    )?;
    linker.func_wrap(
        MODULE,
        "environ_get",
        |mut caller: Caller<'_, HostState>, array: u32, buf: u32| {
            let strings = environ(caller.data());
            errno(write_strings(&mut caller, &strings, array, buf))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "clock_res_get",
        |mut caller: Caller<'_, HostState>, id: u32, res: u32| {
            if id > 3 {
                return Ok(i32::from(INVAL));
            }
            errno(write_u64(&mut caller, res, 1))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "clock_time_get",
        |mut caller: Caller<'_, HostState>, id: u32, _precision: u64, time: u32| {
            // Realtime, monotonic and CPU clocks all read the virtual clock: deterministic runs.
            if id > 3 {
                return Ok(i32::from(INVAL));
            }
            let now = caller.data().proxy.now_ns();
            errno(write_u64(&mut caller, time, now))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "random_get",
        |mut caller: Caller<'_, HostState>, buf: u32, len: u32| {
            let mut bytes = Vec::with_capacity(len.min(1 << 20) as usize);
            // Check the range first so a huge length fails fast instead of generating bytes.
            if let Err(fault) = read(&mut caller, buf, len) {
                return errno(Err(fault));
            }
            while bytes.len() < len as usize {
                bytes.extend_from_slice(&next_random(caller.data_mut()).to_le_bytes());
            }
            bytes.truncate(len as usize);
            errno(write(&mut caller, buf, &bytes))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_write",
        |mut caller: Caller<'_, HostState>, fd: u32, iovs: u32, iovs_len: u32, written_ptr: u32| {
            let level = match fd {
                1 => LogLevel::Info,
                2 => LogLevel::Error,
                _ => return Ok(i32::from(BADF)),
            };
            errno((|| {
                let table = read(
                    &mut caller,
                    iovs,
                    iovs_len.checked_mul(8).ok_or(Status::InvalidMemoryAccess)?,
                )?;
                let mut text = Vec::new();
                for iov in table.chunks_exact(8) {
                    let ptr = u32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]);
                    let len = u32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
                    text.extend_from_slice(&read(&mut caller, ptr, len)?);
                }
                write_u32(&mut caller, written_ptr, text.len() as u32)?;
                if caller.data().wasi.inherit_stdio {
                    inherit_write(fd, &text);
                    return Ok(());
                }
                let message = String::from_utf8_lossy(&text);
                let message = message.strip_suffix('\n').unwrap_or(&message);
                if !message.is_empty() {
                    caller.data_mut().proxy.log(level, message.to_string());
                }
                Ok(())
            })())
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_read",
        |_c: Caller<'_, HostState>, _fd: u32, _iovs: u32, _len: u32, _read: u32| {
            Ok(i32::from(BADF))
        },
    )?;
    linker.func_wrap(MODULE, "fd_close", |_c: Caller<'_, HostState>, _fd: u32| {
        Ok(i32::from(BADF))
    })?;
    linker.func_wrap(
        MODULE,
        "fd_seek",
        |_c: Caller<'_, HostState>, _fd: u32, _offset: i64, _whence: u32, _new: u32| {
            Ok(i32::from(BADF))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_fdstat_get",
        |mut caller: Caller<'_, HostState>, fd: u32, stat: u32| {
            if fd > 2 {
                return Ok(i32::from(BADF));
            }
            // fdstat: filetype u8 (2 = character device), flags u16, rights_base, rights_inheriting.
            // A command whose output is piped must not think it writes to a terminal (libtest
            // would colour its output).
            let mut bytes = [0u8; 24];
            bytes[0] = if caller.data().wasi.inherit_stdio && !host_terminal(fd) {
                0
            } else {
                2
            };
            errno(write(&mut caller, stat, &bytes))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_prestat_get",
        |_c: Caller<'_, HostState>, _fd: u32, _ptr: u32| Ok(i32::from(BADF)),
    )?;
    linker.func_wrap(
        MODULE,
        "fd_prestat_dir_name",
        |_c: Caller<'_, HostState>, _fd: u32, _ptr: u32, _len: u32| Ok(i32::from(BADF)),
    )?;
    linker.func_wrap(
        MODULE,
        "path_open",
        |_c: Caller<'_, HostState>,
         _fd: u32,
         _dirflags: u32,
         _path: u32,
         _path_len: u32,
         _oflags: u32,
         _base: u64,
         _inheriting: u64,
         _fdflags: u32,
         _out: u32| { Ok(i32::from(BADF)) },
    )?;
    linker.func_wrap(
        MODULE,
        "poll_oneoff",
        |_c: Caller<'_, HostState>, _in: u32, _out: u32, _n: u32, _events: u32| {
            Ok(i32::from(NOTSUP))
        },
    )?;
    linker.func_wrap(MODULE, "sched_yield", |_c: Caller<'_, HostState>| {
        Ok(i32::from(SUCCESS))
    })?;
    linker.func_wrap(
        MODULE,
        "proc_exit",
        |_c: Caller<'_, HostState>, code: u32| -> wasmtime::Result<()> {
            Err(wasmtime::Error::new(ProcExit(code)))
        },
    )?;
    Ok(())
}
