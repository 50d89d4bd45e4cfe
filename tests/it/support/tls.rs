//! Test PKI (a CA and a leaf made with rcgen), the rustls server
//! configuration. The default leaf is for "localhost" and 127.0.0.1; the TLS
//! failure tests ask for other names or an expired one.

use std::sync::Arc;

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::ServerConfig;

/// What the leaf certificate says.
pub(crate) struct Leaf {
    /// Subject alternative names (DNS names or IP addresses).
    pub(crate) names: Vec<String>,
    /// Valid in 2000 only, so long expired.
    pub(crate) expired: bool,
}

impl Default for Leaf {
    fn default() -> Leaf {
        Leaf {
            names: vec!["localhost".to_string(), "127.0.0.1".to_string()],
            expired: false,
        }
    }
}

/// A freshly generated CA and a leaf certificate it signed.
pub(crate) struct TestPki {
    /// PEM of the CA certificate (what clients should trust).
    pub(crate) ca_pem: String,
    /// PEM of the leaf certificate alone.
    pub(crate) leaf_pem: String,
    /// PEM (PKCS#8) of the leaf's private key.
    pub(crate) key_pem: String,
    /// Server configuration presenting the leaf (plus the CA) with ALPN
    /// `h2` and `http/1.1`.
    pub(crate) server_config: Arc<ServerConfig>,
}

impl TestPki {
    /// Generates the CA and a leaf for DNS "localhost" and IP 127.0.0.1.
    pub(crate) fn generate() -> TestPki {
        TestPki::generate_for(Leaf::default())
    }

    /// Generates the CA and the leaf `leaf` describes.
    pub(crate) fn generate_for(leaf: Leaf) -> TestPki {
        let ca_key = KeyPair::generate().expect("generate CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name = name("uvcurl test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign CA");

        let leaf_key = KeyPair::generate().expect("generate leaf key");
        let mut leaf_params = CertificateParams::new(leaf.names.clone()).expect("leaf params");
        leaf_params.distinguished_name = name(leaf.names.first().map_or("leaf", String::as_str));
        leaf_params.is_ca = IsCa::ExplicitNoCa;
        leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf_params.use_authority_key_identifier_extension = true;
        if leaf.expired {
            leaf_params.not_before = date_time_ymd(2000, 1, 1);
            leaf_params.not_after = date_time_ymd(2000, 12, 31);
        }
        let leaf_cert = leaf_params
            .signed_by(&leaf_key, &ca_cert, &ca_key)
            .expect("sign leaf");

        let chain: Vec<CertificateDer<'static>> =
            vec![leaf_cert.der().clone(), ca_cert.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server certificate");
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];

        TestPki {
            ca_pem: ca_cert.pem(),
            leaf_pem: leaf_cert.pem(),
            key_pem: leaf_key.serialize_pem(),
            server_config: Arc::new(config),
        }
    }
}

/// A distinguished name with only a common name.
fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}
