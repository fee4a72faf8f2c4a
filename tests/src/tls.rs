//! A certificate authority made at test time, and server certificates it signs.

use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedKey, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

pub struct TestCa {
    ca: CertifiedKey,
    /// The CA certificate as a PEM file (what `WEBHOOKS_EXTRA_CA_FILE` points at).
    pub pem_path: PathBuf,
    _dir: tempfile::TempDir,
}

pub struct ServerCert {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl TestCa {
    pub fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "comps-webhooks test CA");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key_pair = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key_pair).expect("CA cert");
        let dir = tempfile::tempdir().expect("temp dir");
        let pem_path = dir.path().join("test-ca.pem");
        std::fs::write(&pem_path, cert.pem()).expect("write CA pem");
        TestCa {
            ca: CertifiedKey { cert, key_pair },
            pem_path,
            _dir: dir,
        }
    }

    /// A certificate for `localhost` and `127.0.0.1`, signed by this CA.
    pub fn server_cert(&self) -> ServerCert {
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .expect("leaf params");
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key_pair = KeyPair::generate().expect("leaf key");
        let cert = params
            .signed_by(&key_pair, &self.ca.cert, &self.ca.key_pair)
            .expect("leaf cert");
        ServerCert {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der())),
        }
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}
