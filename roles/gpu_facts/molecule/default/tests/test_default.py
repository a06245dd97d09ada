"""gpu_facts on a host without a GPU: the fact exists, says count 0 and why."""

import json


def test_fact_script_installed_with_its_own_python(host):
    fact = host.file("/etc/ansible/facts.d/gpu.fact")
    assert fact.exists
    assert fact.mode == 0o755
    assert fact.content_string.startswith("#!/opt/gxnb/gpu-facts/bin/python3")


def test_fact_reports_no_gpu_and_the_reason(host):
    facts = json.loads(host.check_output("/etc/ansible/facts.d/gpu.fact"))
    assert facts["count"] == 0
    assert facts["devices"] == []
    assert facts["nvml_available"] is False
    assert "NVML" in facts["error"]


def test_nvml_bindings_installed(host):
    out = host.check_output("/opt/gxnb/gpu-facts/bin/python3 -c 'import pynvml; print(pynvml.__name__)'")
    assert out.strip() == "pynvml"
