//! The `extern "C"` functions libcurl calls: the socket and timer callbacks
//! of the multi handle, and the open/close-socket callbacks of each easy
//! handle. Each one only reaches the driver, behind a panic boundary; none of
//! them calls back into libcurl.

use super::driver::Driver;
use curl_sys::{self as curl, curl_socket_t, CURL, CURLM};
use libc::{c_int, c_long, c_void};
use std::panic::{self, AssertUnwindSafe};

pub(super) extern "C" fn on_socket(
    easy: *mut CURL,
    socket: curl_socket_t,
    what: c_int,
    userp: *mut c_void,
    socketp: *mut c_void,
) -> c_int {
    // SAFETY: SOCKETDATA is the driver, alive until after curl_multi_cleanup.
    let driver = unsafe { &*(userp as *const Driver) };
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        driver.handle_socket(easy, socket, what, socketp)
    }));
    if let Err(payload) = result {
        driver
            .uv()
            .inner()
            .stash_panic(payload, "the socket callback");
    }
    0 // -1 would fail every transfer of the multi; errors are handled per transfer
}

pub(super) type CloseSocketCallback = extern "C" fn(*mut c_void, curl_socket_t) -> c_int;

/// libcurl's open-socket callback: opens the socket as libcurl would, and
/// notes that its close will be announced.
pub(super) extern "C" fn on_open_socket(
    clientp: *mut c_void,
    _purpose: curl::curlsocktype,
    address: *mut curl::curl_sockaddr,
) -> curl_socket_t {
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
    // SAFETY: OPENSOCKETDATA is the driver, alive while libcurl has connections.
    let driver = unsafe { &*(clientp as *const Driver) };
    if panic::catch_unwind(AssertUnwindSafe(|| driver.sockets.opened(socket))).is_err() {
        log::error!("uvcurl: panic noting socket {socket} (ignored)");
    }
    socket
}

/// libcurl's close-socket callback: closes the socket's watch while the
/// number is still this socket's, then the socket.
pub(super) extern "C" fn on_close_socket(clientp: *mut c_void, socket: curl_socket_t) -> c_int {
    // SAFETY: CLOSESOCKETDATA is the driver; libcurl closes connections at the
    // latest in curl_multi_cleanup, which runs while the driver is alive.
    let driver = unsafe { &*(clientp as *const Driver) };
    if panic::catch_unwind(AssertUnwindSafe(|| driver.sockets.closing(socket))).is_err() {
        log::error!("uvcurl: panic closing the watch of socket {socket} (ignored)");
    }
    // SAFETY: libcurl hands over a socket it opened through us and no longer uses.
    unsafe { libc::close(socket) }
}

pub(super) extern "C" fn on_timer(
    _multi: *mut CURLM,
    timeout_ms: c_long,
    userp: *mut c_void,
) -> c_int {
    // SAFETY: TIMERDATA is the driver, alive until after curl_multi_cleanup.
    let driver = unsafe { &*(userp as *const Driver) };
    let result = panic::catch_unwind(AssertUnwindSafe(|| driver.handle_timer(timeout_ms)));
    if let Err(payload) = result {
        driver
            .uv()
            .inner()
            .stash_panic(payload, "the timer callback");
    }
    0
}
