;; Declares an ABI version no host serves: weir-runtime and Envoy must both refuse it.
(module
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_9_9_9"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) i32.const 8))
