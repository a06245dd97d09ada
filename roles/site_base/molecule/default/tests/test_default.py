"""site_base: the extra CA is trusted system-wide and the base packages are there."""


def test_extra_ca_is_installed_and_in_the_bundle(host):
    cert = host.file("/usr/local/share/ca-certificates/test-ca.crt")
    assert cert.exists
    assert "BEGIN CERTIFICATE" in cert.content_string
    subjects = host.run("openssl crl2pkcs7 -nocrl -certfile /etc/ssl/certs/ca-certificates.crt"
                        " | openssl pkcs7 -print_certs -noout | grep -c 'subject=.*gxnb molecule test CA'")
    assert subjects.stdout.strip() == "1"


def test_base_packages(host):
    for name in ("ca-certificates", "curl", "sudo", "python3", "acl"):
        assert host.package(name).is_installed, name
