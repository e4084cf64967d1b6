;; An ABI 0.2.1 guest exporting both allocators, each handing out memory from its own
;; region: `malloc` below 65536, `proxy_on_memory_allocate` from 98304. Envoy hands data
;; over through `malloc` when a module exports it (proxy-wasm-cpp-host looks it up first);
;; the request headers show which one the host used: `x-allocator`, and `x-user-agent-copy`
;; (the value read through it, to show the hand-over itself worked).
(module
  (import "env" "proxy_get_header_map_value" (func $get_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value" (func $add_header (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $malloc_next (mut i32) (i32.const 16384))
  (global $proxy_next (mut i32) (i32.const 98304))

  (data (i32.const 1024) "x-allocator")              ;; 11
  (data (i32.const 1040) "malloc")                   ;; 6
  (data (i32.const 1056) "proxy_on_memory_allocate") ;; 24
  (data (i32.const 1088) "user-agent")               ;; 10
  (data (i32.const 1104) "x-user-agent-copy")        ;; 17

  (func (export "proxy_abi_version_0_2_1"))

  (func $bump (param $next i32) (param $size i32) (result i32)
    (i32.and (i32.add (i32.add (local.get $next) (local.get $size)) (i32.const 7)) (i32.const -8)))
  (func (export "malloc") (param $size i32) (result i32)
    (local $at i32)
    (local.set $at (global.get $malloc_next))
    (global.set $malloc_next (call $bump (local.get $at) (local.get $size)))
    (local.get $at))
  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (local $at i32)
    (local.set $at (global.get $proxy_next))
    (global.set $proxy_next (call $bump (local.get $at) (local.get $size)))
    (local.get $at))

  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))

  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (local $ptr i32)
    ;; HTTP_REQUEST_HEADERS = 0; the value's address and size land at 200 and 204.
    (if (i32.eqz (call $get_header (i32.const 0) (i32.const 1088) (i32.const 10) (i32.const 200) (i32.const 204)))
      (then
        (local.set $ptr (i32.load (i32.const 200)))
        (drop (call $add_header (i32.const 0) (i32.const 1104) (i32.const 17) (local.get $ptr) (i32.load (i32.const 204))))
        (if (i32.lt_u (local.get $ptr) (i32.const 65536))
          (then (drop (call $add_header (i32.const 0) (i32.const 1024) (i32.const 11) (i32.const 1040) (i32.const 6))))
          (else (drop (call $add_header (i32.const 0) (i32.const 1024) (i32.const 11) (i32.const 1056) (i32.const 24)))))))
    (i32.const 0))
)
