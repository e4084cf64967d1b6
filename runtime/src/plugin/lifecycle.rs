//! The end of a plugin, as when Envoy drops its VMs (a configuration update or shutdown).

use crate::flows;
use crate::plugin::Plugin;

/// VMs Envoy 1.40 starts for a plugin on its main thread (scenario `exerciser_startup_vms`:
/// three VMs run `proxy_on_vm_start`, `proxy_on_configure` and a tick with one worker).
pub(crate) const ENVOY_MAIN_THREAD_VMS: usize = 2;

impl Plugin {
    /// Shuts the plugin down as Envoy does when it drops its VMs: every root context gets
    /// `proxy_on_done`; one that answers true gets `proxy_on_delete` at once, one that
    /// answers false keeps running (timers, callout responses, queues) until it calls
    /// `proxy_done`, then gets `proxy_on_delete`. A deleted root context ticks no more.
    /// Streams still open are not touched; end them first, as Envoy drains them.
    pub fn shutdown(&self) {
        let mut inner = self.lock();
        for vm in inner.vms.iter_mut() {
            flows::shut_down_root(vm);
        }
        inner.pump();
    }

    /// Whether every root context got `proxy_on_delete` after [`Plugin::shutdown`].
    pub fn is_shut_down(&self) -> bool {
        self.lock()
            .vms
            .iter_mut()
            .all(|vm| vm.state().proxy.root_deleted)
    }
}
