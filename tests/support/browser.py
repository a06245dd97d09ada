"""A person's browser for the end-to-end tests: Debian's Chromium, headless, driven by Selenium
through Debian's chromedriver (browsers and drivers cannot be downloaded here; Selenium Manager
is never asked to).

Chromium trusts the deployment's certificate once Python has verified it against the local
CA: its public key is pinned (--ignore-certificate-errors-spki-list), as a person who imported
the CA would see a valid page. Each step of a journey leaves a screenshot; a failing step also
leaves the page's console log and HTML, and says which step failed.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import ssl
import time
from pathlib import Path
from urllib.parse import urlsplit

CHROMIUM = os.environ.get("GXNB_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("GXNB_CHROMEDRIVER", "/usr/bin/chromedriver")


def missing() -> str | None:
    """Why no browser test can run here (None when it can)."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not shutil.which(path):
            return f"{path} is missing (Debian packages chromium and chromium-driver; scripts/host-setup.sh)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e .[test])"
    return None


def certificate_pin(url: str, ca_file: str | None) -> str:
    """base64 SHA-256 of the public key of the certificate the site at url presents, after
    checking it against ca_file (or the system's CAs) and the host name."""
    parts = urlsplit(url)
    context = ssl.create_default_context(cafile=ca_file or None)
    with (
        socket.create_connection((parts.hostname, parts.port or 443), timeout=30) as raw,
        context.wrap_socket(raw, server_hostname=parts.hostname) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    key = x509.load_der_x509_certificate(der).public_key()
    spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def chromium(galaxy_url: str, ca_file: str | None, width: int = 1400, height: int = 900):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
        "--lang=en-US",
    ):
        options.add_argument(argument)
    if galaxy_url.startswith("https://"):
        options.add_argument(f"--ignore-certificate-errors-spki-list={certificate_pin(galaxy_url, ca_file)}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


class Journey:
    """Numbered steps; each leaves NN-step.png in folder, a failure also NN-step-console.log and
    NN-step-page.html, and an AssertionError naming the step."""

    def __init__(self, driver, folder: Path):
        self.driver = driver
        self.folder = folder
        self.count = 0
        self.seconds: dict[str, float] = {}
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)

    @contextlib.contextmanager
    def step(self, name: str):
        self.count += 1
        label = f"{self.count:02d}-{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')}"
        print(f"browser step {self.count}: {name} ...", flush=True)
        began = time.monotonic()
        try:
            yield
        except Exception as error:
            self._keep_evidence(label)
            message = getattr(error, "msg", None) if hasattr(error, "msg") else str(error)
            message = " ".join((message or "what it waited for did not appear in time").split())[:500]
            raise AssertionError(
                f"browser step {self.count} '{name}' failed: {type(error).__name__}: {message} "
                f"(screenshot, console log and page in {self.folder}/{label}-*)"
            ) from error
        self.seconds[name] = round(time.monotonic() - began, 1)
        self.driver.save_screenshot(str(self.folder / f"{label}.png"))
        print(f"browser step {self.count}: {name}: {self.seconds[name]} s", flush=True)

    def _keep_evidence(self, label: str) -> None:
        with contextlib.suppress(Exception):
            self.driver.save_screenshot(str(self.folder / f"{label}-FAILED.png"))
        with contextlib.suppress(Exception):
            entries = self.driver.get_log("browser")
            lines = [f"{e.get('level')} {e.get('message')}" for e in entries]
            (self.folder / f"{label}-console.log").write_text("\n".join(lines) + "\n")
        with contextlib.suppress(Exception):
            (self.folder / f"{label}-page.html").write_text(self.driver.page_source)

    def write_summary(self) -> None:
        (self.folder / "steps.json").write_text(json.dumps(self.seconds, indent=2) + "\n")
