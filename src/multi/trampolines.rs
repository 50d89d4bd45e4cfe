//! The `extern "C"` functions libcurl calls: the socket and timer callbacks
//! of the multi handle, and the open/close-socket callbacks of each easy
//! handle. Each one reaches only the driver's [`Callbacks`], with its whole
//! body behind the panic boundary (a panic is resumed from `Loop::run`);
//! none of them calls back into libcurl.

use super::driver::Callbacks;
use crate::panic::trampoline;
use curl_sys::{self as curl, curl_socket_t, CURL, CURLM};
use libc::{c_int, c_long, c_void};

/// Recovers the callbacks' data from libcurl's user data.
///
/// # Safety
/// `data` is the driver's boxed [`Callbacks`], which it keeps until after
/// `curl_multi_cleanup` returned, and so past the last call of any of these.
unsafe fn callbacks<'a>(data: *mut c_void) -> &'a Callbacks {
    // SAFETY: per the contract.
    unsafe { &*(data as *const Callbacks) }
}

pub(super) extern "C" fn on_socket(
    easy: *mut CURL,
    socket: curl_socket_t,
    what: c_int,
    userp: *mut c_void,
    socketp: *mut c_void,
) -> c_int {
    // SAFETY: SOCKETDATA is the driver's Callbacks.
    let callbacks = unsafe { callbacks(userp) };
    // 0 also after a panic: -1 would fail every transfer of the multi, and
    // errors are handled per transfer.
    trampoline(callbacks.uv.inner(), "the socket callback", 0, || {
        callbacks.handle_socket(easy, socket, what, socketp);
        0
    })
}

pub(super) extern "C" fn on_timer(
    _multi: *mut CURLM,
    timeout_ms: c_long,
    userp: *mut c_void,
) -> c_int {
    // SAFETY: TIMERDATA is the driver's Callbacks.
    let callbacks = unsafe { callbacks(userp) };
    trampoline(callbacks.uv.inner(), "the timer callback", 0, || {
        callbacks.handle_timer(timeout_ms);
        0
    })
}

pub(crate) type CloseSocketCallback = extern "C" fn(*mut c_void, curl_socket_t) -> c_int;

/// libcurl's open-socket callback: opens the socket as libcurl would, and
/// notes that its close will be announced. A socket numbered 1024 or above is
/// refused (closed, `CURL_SOCKET_BAD`) on a libcurl that can only `select()`,
/// and the transfer then fails with `ErrorKind::SocketLimit`, not `Connect`.
pub(crate) extern "C" fn on_open_socket(
    clientp: *mut c_void,
    _purpose: curl::curlsocktype,
    address: *mut curl::curl_sockaddr,
) -> curl_socket_t {
    // SAFETY: OPENSOCKETDATA is the easy handle's slot, which names the
    // transfer's state, kept by the driver while libcurl runs the transfer
    // (sockets are opened only then).
    let Some(state) = (unsafe { crate::transfer::state_of_slot(clientp) }) else {
        return curl::CURL_SOCKET_BAD;
    };
    // SAFETY: its socket context is the driver's Callbacks (set with
    // OPENSOCKETDATA), alive while libcurl has connections.
    let callbacks = unsafe { callbacks(state.flags.socket_context.get() as *mut c_void) };
    trampoline(
        callbacks.uv.inner(),
        "the open-socket callback",
        curl::CURL_SOCKET_BAD,
        || {
            // SAFETY: libcurl passes a valid address description for the call.
            let address = unsafe { &*address };
            // SAFETY: plain socket(2) with the family/type/protocol libcurl chose.
            let socket = unsafe {
                libc::socket(
                    address.family,
                    address.socktype | libc::SOCK_CLOEXEC,
                    address.protocol,
                )
            };
            if socket < 0 {
                return curl::CURL_SOCKET_BAD;
            }
            if socket >= SELECT_LIMIT && crate::global::known_high_fds() == Some(false) {
                // SAFETY: the socket we just opened, used by nobody else.
                unsafe { libc::close(socket) };
                state.flags.refused_high_socket.set(Some(socket));
                return curl::CURL_SOCKET_BAD;
            }
            callbacks.sockets.opened(socket);
            socket
        },
    )
}

/// `FD_SETSIZE`: `select()` cannot watch a descriptor numbered this or above.
const SELECT_LIMIT: curl_socket_t = 1024;

/// libcurl's close-socket callback: closes the socket's watch while the
/// number is still this socket's, then the socket.
pub(crate) extern "C" fn on_close_socket(clientp: *mut c_void, socket: curl_socket_t) -> c_int {
    // SAFETY: CLOSESOCKETDATA is the driver's Callbacks; libcurl closes
    // connections at the latest in curl_multi_cleanup, while it is alive.
    let callbacks = unsafe { callbacks(clientp) };
    trampoline(
        callbacks.uv.inner(),
        "the close-socket callback",
        (),
        || callbacks.sockets.closing(socket),
    );
    // Closed whatever happened above: libcurl no longer uses it.
    // SAFETY: a socket opened through us that libcurl hands back.
    unsafe { libc::close(socket) }
}
