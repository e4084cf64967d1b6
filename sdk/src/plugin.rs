//! Registration: which plugins a module holds, and the root context that configures them.

#[cfg(feature = "callout")]
use crate::background::Background;
use crate::config::{parse_config, ConfigError, Shared, Validate};
use crate::http::stream::HttpStream;
use crate::http::HttpFilter;
use crate::network::{NetworkFilter, NetworkStream};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext, StreamContext};
use serde::de::DeserializeOwned;
use weir_abi::{BufferType, ContextType};

/// One plugin a module offers, built by [`http_plugin!`](crate::http_plugin) or
/// [`plugins!`](crate::plugins).
pub struct PluginDef {
    root_id: Option<&'static str>,
    // A plain fn pointer rather than a boxed closure: the table is then a `static` built at
    // compile time, with no thread-local, `Rc` or allocation at start-up (and less code).
    new_root: fn() -> Box<dyn PluginRoot>,
}

impl std::fmt::Debug for PluginDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginDef")
            .field("root_id", &self.root_id)
            .finish_non_exhaustive()
    }
}

/// The type-erased root of one plugin: parses its config and makes its streams.
#[doc(hidden)]
pub trait PluginRoot {
    fn context_type(&self) -> ContextType;
    fn configure(&mut self, bytes: &[u8]) -> Result<(), ConfigError>;
    fn new_http(&self) -> Option<Box<dyn HttpContext>> {
        None
    }
    fn new_stream(&self) -> Option<Box<dyn StreamContext>> {
        None
    }
    /// Registers the plugin's background jobs for the configuration just parsed.
    #[cfg(feature = "callout")]
    fn background(&self, _bg: &mut Background) {}
}

/// The plugin's `background = …` function, if it has one. Used by the macros.
#[doc(hidden)]
#[cfg(feature = "callout")]
pub type Start<C> = Option<fn(&Shared<C>, &mut Background)>;
/// Without the `callout` feature a plugin has no background jobs. Used by the macros.
#[doc(hidden)]
#[cfg(not(feature = "callout"))]
pub type Start<C> = std::marker::PhantomData<C>;

/// A plugin without a `background = …` function. Used by the macros.
#[doc(hidden)]
pub fn no_background<C>() -> Start<C> {
    Default::default()
}

/// A plugin's `background = …` function. Used by the macros.
#[doc(hidden)]
#[cfg(feature = "callout")]
pub fn with_background<C>(start: fn(&Shared<C>, &mut Background)) -> Start<C> {
    Some(start)
}

#[cfg(feature = "callout")]
fn start_jobs<C>(start: &Start<C>, config: &Option<Shared<C>>, bg: &mut Background) {
    if let (Some(start), Some(config)) = (start, config) {
        start(config, bg);
    }
}

struct HttpRoot<C, M> {
    config: Option<Shared<C>>,
    make: M,
    start: Start<C>,
}

impl<C, F, M> PluginRoot for HttpRoot<C, M>
where
    C: DeserializeOwned + Validate + 'static,
    F: HttpFilter,
    M: Fn(Shared<C>) -> F + 'static,
{
    fn context_type(&self) -> ContextType {
        ContextType::HttpContext
    }

    fn configure(&mut self, bytes: &[u8]) -> Result<(), ConfigError> {
        self.config = Some(Shared::new(parse_config(bytes)?));
        Ok(())
    }

    fn new_http(&self) -> Option<Box<dyn HttpContext>> {
        let config = self.config.clone()?;
        Some(Box::new(HttpStream::new((self.make)(config))))
    }

    #[cfg(feature = "callout")]
    fn background(&self, bg: &mut Background) {
        start_jobs(&self.start, &self.config, bg);
    }
}

impl PluginDef {
    /// Used by the macros: a plugin under `root_id` (any root id if `None`).
    #[doc(hidden)]
    pub const fn new(root_id: Option<&'static str>, new_root: fn() -> Box<dyn PluginRoot>) -> Self {
        PluginDef { root_id, new_root }
    }
}

struct NetworkRoot<C, M> {
    config: Option<Shared<C>>,
    make: M,
    start: Start<C>,
}

impl<C, F, M> PluginRoot for NetworkRoot<C, M>
where
    C: DeserializeOwned + Validate + 'static,
    F: NetworkFilter,
    M: Fn(Shared<C>) -> F + 'static,
{
    fn context_type(&self) -> ContextType {
        ContextType::StreamContext
    }

    fn configure(&mut self, bytes: &[u8]) -> Result<(), ConfigError> {
        self.config = Some(Shared::new(parse_config(bytes)?));
        Ok(())
    }

    fn new_stream(&self) -> Option<Box<dyn StreamContext>> {
        let config = self.config.clone()?;
        Some(Box::new(NetworkStream::new((self.make)(config))))
    }

    #[cfg(feature = "callout")]
    fn background(&self, bg: &mut Background) {
        start_jobs(&self.start, &self.config, bg);
    }
}

/// Makes the root of a NETWORK plugin. Used by the macros; not for direct use.
#[doc(hidden)]
pub fn network_root<C, F, M>(make: M, start: Start<C>) -> Box<dyn PluginRoot>
where
    C: DeserializeOwned + Validate + 'static,
    F: NetworkFilter,
    M: Fn(Shared<C>) -> F + 'static,
{
    Box::new(NetworkRoot::<C, M> {
        config: None,
        make,
        start,
    })
}

/// Makes the root of an HTTP plugin. Used by the macros; not for direct use.
#[doc(hidden)]
pub fn http_root<C, F, M>(make: M, start: Start<C>) -> Box<dyn PluginRoot>
where
    C: DeserializeOwned + Validate + 'static,
    F: HttpFilter,
    M: Fn(Shared<C>) -> F + 'static,
{
    Box::new(HttpRoot::<C, M> {
        config: None,
        make,
        start,
    })
}

/// Installs the module's root-context factory and the logger. Called from `_initialize`
/// with a factory the macro generates around the module's static plugin table, so no
/// global state (and no `OnceLock` machinery) is needed to find the table later.
#[doc(hidden)]
pub fn register(new_root: fn(u32) -> Box<dyn RootContext>) {
    crate::logger::install();
    proxy_wasm::set_root_context(new_root);
}

/// A root context over the module's plugin table. Used by the macros; not for direct use.
#[doc(hidden)]
pub fn new_root(plugins: &'static [PluginDef]) -> Box<dyn RootContext> {
    Box::new(Root {
        plugins,
        plugin: None,
        context_type: None,
        #[cfg(feature = "callout")]
        background: Background::default(),
    })
}

/// The proxy-wasm root context. Which plugin it runs is decided at configure time from the
/// root id (`pluginName` in a WasmPlugin), since the ABI does not pass it at creation.
struct Root {
    plugins: &'static [PluginDef],
    plugin: Option<Box<dyn PluginRoot>>,
    /// The chosen plugin's kind, kept here because the host asks at every new stream.
    context_type: Option<ContextType>,
    #[cfg(feature = "callout")]
    background: Background,
}

impl Root {
    fn select(&mut self) -> Result<(), String> {
        if self.plugin.is_some() {
            return Ok(());
        }
        let plugins = self.plugins;
        let root_id = root_id();
        let chosen = match plugins {
            [only] if only.root_id.is_none() => Some(only),
            all => all.iter().find(|p| p.root_id == Some(root_id.as_str())),
        };
        let Some(def) = chosen else {
            let mut msg = format!(
                "this module has no plugin with root id '{root_id}'; set pluginName to one of:"
            );
            for name in plugins.iter().filter_map(|p| p.root_id) {
                msg.push(' ');
                msg.push_str(name);
            }
            return Err(msg);
        };
        let plugin = (def.new_root)();
        self.context_type = Some(plugin.context_type());
        self.plugin = Some(plugin);
        Ok(())
    }
}

/// The root id Envoy runs this context under; empty when none was configured.
fn root_id() -> String {
    match hostcalls::get_property(vec!["plugin_root_id"]) {
        // Root ids come from Envoy's (UTF-8) configuration. Not `from_utf8_lossy`: that
        // costs a kilobyte of Wasm for a case that only needs to be named in an error.
        Ok(Some(bytes)) => String::from_utf8(bytes).unwrap_or_else(|_| String::from("<not UTF-8>")),
        _ => String::new(),
    }
}

impl Context for Root {
    #[cfg(feature = "callout")]
    fn on_http_call_response(
        &mut self,
        token: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        if crate::callout::deliver(token, num_headers, body_size) {
            self.background.on_callout();
        }
    }

    #[cfg(feature = "grpc")]
    fn on_grpc_call_response(&mut self, token: u32, status_code: u32, response_size: usize) {
        if crate::grpc::deliver_call(token, status_code, response_size) {
            self.background.on_callout();
        }
    }

    #[cfg(feature = "grpc")]
    fn on_grpc_stream_initial_metadata(&mut self, token: u32, _num_elements: u32) {
        if crate::grpc::stream::deliver_initial_metadata(token) {
            self.background.on_callout();
        }
    }

    #[cfg(feature = "grpc")]
    fn on_grpc_stream_message(&mut self, token: u32, message_size: usize) {
        if crate::grpc::stream::deliver_message(token, message_size) {
            self.background.on_callout();
        }
    }

    #[cfg(feature = "grpc")]
    fn on_grpc_stream_trailing_metadata(&mut self, token: u32, _num_elements: u32) {
        if crate::grpc::stream::deliver_trailing_metadata(token) {
            self.background.on_callout();
        }
    }

    #[cfg(feature = "grpc")]
    fn on_grpc_stream_close(&mut self, token: u32, status_code: u32) {
        if crate::grpc::stream::deliver_close(token, status_code) {
            self.background.on_callout();
        }
    }
}

impl RootContext for Root {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        crate::logger::follow_host_level();
        true
    }

    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        crate::logger::follow_host_level();
        if let Err(msg) = self.select() {
            log::error!("{msg}");
            return false;
        }
        let bytes = match hostcalls::get_buffer(
            crate::proxy_types::buffer_type(BufferType::PluginConfiguration),
            0,
            plugin_configuration_size,
        ) {
            Ok(bytes) => bytes.unwrap_or_default(),
            Err(status) => {
                log::error!(
                    "cannot read the plugin configuration: host status {}",
                    status as u32
                );
                return false;
            }
        };
        let Some(plugin) = self.plugin.as_mut() else {
            return false;
        };
        match plugin.configure(&bytes) {
            Ok(()) => {
                #[cfg(feature = "callout")]
                {
                    self.background = Background::default();
                    plugin.background(&mut self.background);
                    self.background.start();
                }
                true
            }
            Err(err) => {
                log::error!("{err}");
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        self.plugin.as_ref()?.new_http()
    }

    fn create_stream_context(&self, _context_id: u32) -> Option<Box<dyn StreamContext>> {
        self.plugin.as_ref()?.new_stream()
    }

    #[cfg(feature = "callout")]
    fn on_tick(&mut self) {
        self.background.on_tick();
    }

    #[cfg(feature = "callout")]
    fn on_queue_ready(&mut self, queue_id: u32) {
        self.background.on_queue_ready(queue_id);
    }

    fn get_type(&self) -> Option<proxy_wasm::types::ContextType> {
        self.context_type.map(crate::proxy_types::context_type)
    }
}

/// Declares the plugins a module holds, each under the root id (`pluginName`) that selects
/// it. Use [`http_plugin!`](crate::http_plugin) for a module with a single plugin.
///
/// ```no_run
/// use weir::prelude::*;
/// use weir::network::NetworkFilter;
///
/// #[derive(Deserialize)]
/// struct Empty {}
/// impl Validate for Empty {}
/// struct Tag;
/// impl HttpFilter for Tag {}
/// struct Count;
/// impl NetworkFilter for Count {}
///
/// weir::plugins! {
///     "tag" => http(Empty => |_cfg| Tag),
///     "count" => network(Empty => |_cfg| Count),
/// }
/// ```
#[macro_export]
macro_rules! plugins {
    ($($root_id:literal => $kind:ident ($config:ty => $make:expr $(, background = $start:expr)?)),+ $(,)?) => {
        $crate::__initialize! {
            $($crate::__private::PluginDef::new(::core::option::Option::Some($root_id), || {
                $crate::__private::$kind::<$config, _, _>($make, $crate::__start!($config $(, $start)?))
            })),+
        }
    };
}

/// Declares a module's only plugin: its config type and how to make a filter per stream
/// from the shared config. The plugin runs under any root id.
///
/// See the [crate documentation](crate) for a complete plugin.
#[macro_export]
macro_rules! http_plugin {
    ($config:ty => $make:expr $(, background = $start:expr)?) => {
        $crate::__initialize! {
            $crate::__private::PluginDef::new(::core::option::Option::None, || {
                $crate::__private::http::<$config, _, _>($make, $crate::__start!($config $(, $start)?))
            })
        }
    };
}

/// Declares a module's only plugin, a NETWORK (L4) filter: its config type and how to make
/// a filter per connection. The plugin runs under any root id.
/// See [`network`](crate::network) for an example.
#[macro_export]
macro_rules! network_plugin {
    ($config:ty => $make:expr $(, background = $start:expr)?) => {
        $crate::__initialize! {
            $crate::__private::PluginDef::new(::core::option::Option::None, || {
                $crate::__private::network::<$config, _, _>($make, $crate::__start!($config $(, $start)?))
            })
        }
    };
}

/// A plugin's background function, or none. (`background = …` needs the `callout` feature.)
#[doc(hidden)]
#[macro_export]
macro_rules! __start {
    ($config:ty) => {
        $crate::__private::no_background::<$config>()
    };
    ($config:ty, $start:expr) => {
        $crate::__private::with_background::<$config>($start)
    };
}

/// The module's `_initialize` export: run static constructors, then register.
#[doc(hidden)]
#[macro_export]
macro_rules! __initialize {
    ($($plugin:expr),+) => {
        static __WEIR_PLUGINS: &[$crate::__private::PluginDef] = &[$($plugin),+];

        #[unsafe(no_mangle)]
        pub extern "C" fn _initialize() {
            #[cfg(target_os = "wasi")]
            {
                unsafe extern "C" {
                    fn __wasm_call_ctors();
                }
                // SAFETY: the reactor's constructors must run once before any other export;
                // the host calls `_initialize` exactly once, first.
                unsafe { __wasm_call_ctors() };
            }
            $crate::__private::register(|_context_id| $crate::__private::new_root(__WEIR_PLUGINS));
        }
    };
}
