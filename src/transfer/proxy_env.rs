//! [`ProxyEnv`]: which proxy variables the environment had when a multi
//! handle was made.

/// Whether the environment names proxies, read once when a multi handle is
/// made. Left alone, libcurl looks the variables up with `getenv` for every
/// transfer (`no_proxy`, `NO_PROXY`, then up to four `*_proxy` names: 1.5k
/// instructions per request, a scan of the whole environment each). When
/// none is set, uvcurl says so to libcurl once per easy handle: with no
/// proxy anywhere (nor in the request), `CURLOPT_NOPROXY` `"*"`, so libcurl
/// skips its proxy set-up; with only `no_proxy` missing, `CURLOPT_NOPROXY`
/// `""`, which is what the unset variable means. A variable that is set,
/// libcurl reads as before.
///
/// So a variable set after the multi handle was made is not seen by its
/// transfers (a new multi handle reads them again), as with reqwest, which
/// reads them when a client is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProxyEnv {
    /// A `*_proxy` variable other than `no_proxy` is set, in any case.
    pub proxy: bool,
    /// `no_proxy` or `NO_PROXY` is set.
    pub no_proxy: bool,
}

impl ProxyEnv {
    /// Reads the environment (its names only).
    pub fn read() -> ProxyEnv {
        Self::of_names(std::env::vars_os().map(|(name, _)| name))
    }

    /// What a list of variable names says.
    fn of_names(names: impl Iterator<Item = std::ffi::OsString>) -> ProxyEnv {
        let mut env = ProxyEnv {
            proxy: false,
            no_proxy: false,
        };
        for name in names {
            let name = name.as_encoded_bytes();
            if name.eq_ignore_ascii_case(b"no_proxy") {
                env.no_proxy = true;
            } else if name.len() >= 6 && name[name.len() - 6..].eq_ignore_ascii_case(b"_proxy") {
                env.proxy = true;
            }
        }
        env
    }
}

#[cfg(test)]
mod tests {
    use super::ProxyEnv;

    fn of(names: &[&str]) -> ProxyEnv {
        ProxyEnv::of_names(names.iter().map(Into::into))
    }

    #[test]
    fn every_proxy_variable_counts_in_any_case() {
        assert_eq!(
            of(&["PATH", "HOME", "proxy", "PROXY_URL"]),
            ProxyEnv {
                proxy: false,
                no_proxy: false
            }
        );
        for name in [
            "http_proxy",
            "HTTPS_PROXY",
            "all_proxy",
            "ftp_proxy",
            "Http_Proxy",
        ] {
            assert!(of(&["PATH", name]).proxy, "{name}");
            assert!(!of(&[name]).no_proxy, "{name}");
        }
        for name in ["no_proxy", "NO_PROXY"] {
            assert_eq!(
                of(&[name]),
                ProxyEnv {
                    proxy: false,
                    no_proxy: true
                },
                "{name}"
            );
        }
    }
}
