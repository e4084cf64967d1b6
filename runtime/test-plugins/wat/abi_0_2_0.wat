;; An ABI 0.2.0 guest shaped like AssemblyScript's `@solo-io/proxy-runtime` output: it
;; allocates through an exported `malloc` (no `proxy_on_memory_allocate`), sets up in a Wasm
;; start section and imports WASI as `wasi_unstable`. Hand-written because the npm toolchain
;; is not installed on the build machines; it keeps exactly the three traits that matter.
;;
;; On request headers it adds `x-abi: 0.2.0`, `x-started` (set by the start section),
;; `x-config` (the plugin configuration), `x-missing-status` (the status of reading a header
;; that is absent: `1` = NotFound in 0.2.x), and `x-user-agent-copy`, read with result
;; pointers 0 and 4: small integers in bounds, a guest bug Envoy tolerates by writing there.
(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes" (func $get_buffer (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_value" (func $get_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value" (func $add_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_continue_stream" (func $continue_stream (param i32) (result i32)))
  (import "wasi_unstable" "environ_sizes_get" (func $environ_sizes (param i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 16384))
  (global $started (mut i32) (i32.const 0))
  (global $config_ptr (mut i32) (i32.const 0))
  (global $config_len (mut i32) (i32.const 0))

  (data (i32.const 1024) "x-abi")          ;; 5
  (data (i32.const 1040) "0.2.0")          ;; 5
  (data (i32.const 1056) "x-started")      ;; 9
  (data (i32.const 1072) "yes")            ;; 3
  (data (i32.const 1080) "no")             ;; 2
  (data (i32.const 1088) "x-config")       ;; 8
  (data (i32.const 1104) "x-not-sent")     ;; 10
  (data (i32.const 1120) "x-missing-status") ;; 16
  (data (i32.const 1140) "0123456789")
  (data (i32.const 1152) "user-agent")     ;; 10
  (data (i32.const 1168) "x-user-agent-copy") ;; 17
  (data (i32.const 1192) "abi-0.2.0: configured") ;; 21
  (data (i32.const 1216) "x-resp-abi")     ;; 10

  ;; AssemblyScript runs its top-level statements in the start function.
  (func $init (global.set $started (i32.const 1)))
  (start $init)

  (func (export "proxy_abi_version_0_2_0"))

  ;; A bump allocator, enough for a test guest.
  (func (export "malloc") (param $size i32) (result i32)
    (local $at i32)
    (local.set $at (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (global.get $heap) (local.get $size)) (i32.const 7)) (i32.const -8)))
    (local.get $at))

  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
    ;; WASI through `wasi_unstable`: must succeed (0).
    (i32.eqz (call $environ_sizes (i32.const 64) (i32.const 68))))
  (func (export "proxy_on_configure") (param $ctx i32) (param $size i32) (result i32)
    ;; PLUGIN_CONFIGURATION = 7
    (drop (call $get_buffer (i32.const 7) (i32.const 0) (local.get $size) (i32.const 72) (i32.const 76)))
    (global.set $config_ptr (i32.load (i32.const 72)))
    (global.set $config_len (i32.load (i32.const 76)))
    (drop (call $log (i32.const 2) (i32.const 1192) (i32.const 21)))
    (i32.const 1))

  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (local $status i32)
    (drop (call $add_header (i32.const 0) (i32.const 1024) (i32.const 5) (i32.const 1040) (i32.const 5)))
    (if (global.get $started)
      (then (drop (call $add_header (i32.const 0) (i32.const 1056) (i32.const 9) (i32.const 1072) (i32.const 3))))
      (else (drop (call $add_header (i32.const 0) (i32.const 1056) (i32.const 9) (i32.const 1080) (i32.const 2)))))
    (drop (call $add_header (i32.const 0) (i32.const 1088) (i32.const 8) (global.get $config_ptr) (global.get $config_len)))
    ;; A header that is not there: the status, as one digit.
    (local.set $status (call $get_header (i32.const 0) (i32.const 1104) (i32.const 10) (i32.const 80) (i32.const 84)))
    (drop (call $add_header (i32.const 0) (i32.const 1120) (i32.const 16)
      (i32.add (i32.const 1140) (i32.rem_u (local.get $status) (i32.const 10))) (i32.const 1)))
    ;; The guest bug: result pointers 0 and 4.
    (if (i32.eqz (call $get_header (i32.const 0) (i32.const 1152) (i32.const 10) (i32.const 0) (i32.const 4)))
      (then (drop (call $add_header (i32.const 0) (i32.const 1168) (i32.const 17) (i32.load (i32.const 0)) (i32.load (i32.const 4))))))
    (i32.const 0))

  (func (export "proxy_on_response_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    ;; HTTP_RESPONSE_HEADERS = 2
    (drop (call $add_header (i32.const 2) (i32.const 1216) (i32.const 10) (i32.const 1040) (i32.const 5)))
    (i32.const 0))
)
