;; An ABI 0.2.1 guest that fails the way a Rust plugin panics: std's panic hook writes the
;; message to stderr through WASI `fd_write`, then the module executes `unreachable`. It does
;; so on every request whose path is `/panic`, and lets others through, so a test can see what
;; Envoy logs for a guest panic and trap (what `Envoy::wasm_failures` looks for).
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_value" (func $get_header (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 16384))

  (data (i32.const 1024) ":path")  ;; 5
  (data (i32.const 1040) "/panic") ;; 6
  (data (i32.const 1056) "panicked at src/lib.rs:7:9:\nthe guest gave up\n") ;; 46

  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (local $at i32)
    (local.set $at (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (global.get $heap) (local.get $size)) (i32.const 7)) (i32.const -8)))
    (local.get $at))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))

  ;; Whether the 6 bytes at $ptr are "/panic".
  (func $is_panic_path (param $ptr i32) (param $len i32) (result i32)
    (if (i32.ne (local.get $len) (i32.const 6)) (then (return (i32.const 0))))
    (i32.and
      (i32.eq (i32.load (local.get $ptr)) (i32.load (i32.const 1040)))
      (i32.eq (i32.load16_u (i32.add (local.get $ptr) (i32.const 4))) (i32.load16_u (i32.const 1044)))))

  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    ;; HTTP_REQUEST_HEADERS = 0; the value's address and size land at 200 and 204.
    (if (i32.eqz (call $get_header (i32.const 0) (i32.const 1024) (i32.const 5) (i32.const 200) (i32.const 204)))
      (then
        (if (call $is_panic_path (i32.load (i32.const 200)) (i32.load (i32.const 204)))
          (then
            ;; One iovec at 300: the message at 1056, 46 bytes; bytes written land at 308.
            (i32.store (i32.const 300) (i32.const 1056))
            (i32.store (i32.const 304) (i32.const 46))
            (drop (call $fd_write (i32.const 2) (i32.const 300) (i32.const 1) (i32.const 308)))
            (unreachable)))))
    (i32.const 0))
)
