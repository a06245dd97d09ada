# terraform test (no provider): plans, rendered cloud-init, inventory shape, the
# firewall rules, the validation of the shared settings, the inventory file.

variables {
  site = {
    ssh_public_key        = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKqv2G3dVw0Jmx8rj6RRX3zOP4HVo3Ea2t6mT5j4a7nZ ansible@controller"
    ssh_allowed_cidrs     = ["203.0.113.10/32"]
    galaxy_server         = { name = "galaxy", address = "10.0.0.2" }
    extra_ca_certificates = ["-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUTest\n-----END CERTIFICATE-----"]
  }
  nodes = {
    gpu-a = { flavor = "g5.xlarge", gpu_count = 1, image = "debian-12", scratch_disk_gb = 200 }
    gpu-b = { flavor = "p4d.24xlarge", gpu_count = 8, image = "debian-12", root_disk_gb = 200 }
  }
  instances = {
    gpu-a = { id = "i-a", address = "10.0.0.11" }
    gpu-b = { id = "i-b", address = "10.0.0.12" }
  }
}

run "inventory_has_site_groups_and_gpu_counts" {
  command = plan

  assert {
    condition     = output.inventory.all.children.gpu_nodes.hosts["gpu-b"].gxnb_gpu_count == 8
    error_message = "gpu-b must carry its 8 GPUs"
  }
  assert {
    condition     = output.inventory.all.children.gpu_nodes.hosts["gpu-a"].ansible_host == "10.0.0.11"
    error_message = "hosts must use the cloud module's addresses"
  }
  assert {
    condition     = keys(output.inventory.all.children.job_nodes.hosts) == ["gpu-a", "gpu-b"]
    error_message = "every GPU node is a job node"
  }
  assert {
    condition     = output.inventory.all.children.job_nodes.hosts["gpu-b"].gxnb_internal_address == "10.0.0.12"
    error_message = "a job node's gxnb_internal_address (Slurm's NodeAddr) is its private address"
  }
  assert {
    condition     = output.inventory.all.children.galaxy_servers.hosts["galaxy"] == { ansible_host = "10.0.0.2", gxnb_internal_address = "10.0.0.2", gxnb_slurmd_port = 6818, gxnb_session_ports = { from = 32768, to = 60999 }, gxnb_metrics_node_port = 9100, gxnb_metrics_gpu_port = 9835 }
    error_message = "the Galaxy server lands in galaxy_servers, at its given address"
  }
  assert {
    condition     = output.inventory.all.children.job_nodes.hosts["gpu-a"].gxnb_slurmd_port == 6818 && output.inventory.all.children.job_nodes.hosts["gpu-a"].gxnb_session_ports == { from = 32768, to = 60999 }
    error_message = "the inventory carries the ports the firewall opens (slurmd, the sessions' published range)"
  }
  assert {
    condition     = output.gpu_count_total == 9
    error_message = "total GPUs"
  }
  assert {
    condition     = jsonencode(yamldecode(output.inventory_yaml)) == jsonencode(output.inventory)
    error_message = "inventory_yaml must be the inventory as YAML"
  }
  assert {
    condition     = output.inventory_path == null
    error_message = "without site.inventory_path no file is written"
  }
}

run "cloud_init_is_rendered_per_node" {
  command = plan

  assert {
    condition     = startswith(output.user_data["gpu-a"], "#cloud-config")
    error_message = "user data must be cloud-config"
  }
  assert {
    condition     = can(yamldecode(output.user_data["gpu-a"]).users[0].ssh_authorized_keys[0])
    error_message = "user data must parse as YAML and carry the login key"
  }
  assert {
    condition     = yamldecode(output.user_data["gpu-a"]).mounts[0][1] == "/scratch"
    error_message = "a node with a scratch disk mounts it"
  }
  assert {
    condition     = !can(yamldecode(output.user_data["gpu-b"]).mounts)
    error_message = "a node without a scratch disk has no mount"
  }
  assert {
    condition     = strcontains(yamldecode(output.user_data["gpu-a"]).ca_certs.trusted[0], "BEGIN CERTIFICATE")
    error_message = "extra CA certificates are trusted"
  }
  assert {
    condition     = yamldecode(output.user_data["gpu-a"]).ssh_pwauth == false
    error_message = "password login stays off"
  }
}

run "user_data_holds_no_secret" {
  command = plan

  assert {
    condition = alltrue([for ud in values(output.user_data) :
      !can(regex("(?im)(PRIVATE KEY|^\\s*-?\\s*(password|passwd|plain_text_passwd|hashed_passwd)\\s*:|chpasswd|api[_-]?key\\s*[:=]|token\\s*[:=])", ud))
    ])
    error_message = "user data must not carry key material, passwords or tokens"
  }
}

run "firewall_opens_slurmd_and_tools_to_the_galaxy_server_only" {
  command = plan

  assert {
    condition     = output.firewall_rules["slurmd 10.0.0.2/32"] == { name = "slurmd", description = "slurmd, from slurmctld and srun on the Galaxy server", protocol = "tcp", from_port = 6818, to_port = 6818, cidr = "10.0.0.2/32" }
    error_message = "slurmd (tcp 6818) must be open to the Galaxy server's address"
  }
  assert {
    condition     = [for r in values(output.firewall_rules) : [r.from_port, r.to_port] if r.name == "interactive-tools"] == [[32768, 60999]]
    error_message = "the interactive-tool range opens once, to the Galaxy server"
  }
  assert {
    condition     = alltrue([for r in values(output.firewall_rules) : r.name == "ssh" ? r.cidr == "203.0.113.10/32" : r.cidr == "10.0.0.2/32"])
    error_message = "SSH from the controller only, everything else from the Galaxy server only"
  }
  assert {
    condition     = sort(keys(output.firewall_rules)) == tolist(["interactive-tools 10.0.0.2/32", "metrics-gpu 10.0.0.2/32", "metrics-node 10.0.0.2/32", "slurmd 10.0.0.2/32", "ssh 203.0.113.10/32"])
    error_message = "no rule besides SSH, slurmd, the exporters and the interactive tools"
  }
  assert {
    condition     = output.firewall_rules["metrics-node 10.0.0.2/32"].from_port == 9100 && output.firewall_rules["metrics-gpu 10.0.0.2/32"].to_port == 9835
    error_message = "the node (9100) and GPU (9835) exporters are open to the Galaxy server's Prometheus"
  }
  assert {
    condition     = !anytrue([for r in values(output.firewall_rules) : endswith(r.cidr, "/0")])
    error_message = "no rule is open to the world"
  }
}

run "galaxy_server_cidrs_replace_the_servers_address" {
  command = plan
  variables {
    site = merge(var.site, { galaxy_server_cidrs = ["10.0.0.0/24", "10.0.1.0/24"], slurmd_port = 7818 })
  }

  assert {
    condition     = sort([for r in values(output.firewall_rules) : r.cidr if r.name == "slurmd"]) == tolist(["10.0.0.0/24", "10.0.1.0/24"])
    error_message = "slurmd opens to the given Galaxy networks"
  }
  assert {
    condition     = alltrue([for r in values(output.firewall_rules) : r.from_port == 7818 if r.name == "slurmd"])
    error_message = "slurmd_port sets the slurmd rule"
  }
  assert {
    condition     = output.inventory.all.children.galaxy_servers.hosts["galaxy"].gxnb_slurmd_port == 7818 && output.inventory.all.children.job_nodes.hosts["gpu-b"].gxnb_slurmd_port == 7818
    error_message = "slurmd_port reaches the inventory (slurm.conf's SlurmdPort)"
  }
  assert {
    condition     = output.site.galaxy_server_cidrs == tolist(["10.0.0.0/24", "10.0.1.0/24"])
    error_message = "the site output carries the networks used"
  }
}

run "apply_writes_the_inventory_file" {
  command = apply
  variables {
    site = merge(var.site, { inventory_path = ".terraform/tftest/generated/core.yml" })
  }

  assert {
    condition     = output.inventory_path == ".terraform/tftest/generated/core.yml" && jsonencode(yamldecode(file(output.inventory_path))) == jsonencode(output.inventory)
    error_message = "apply must write the inventory to site.inventory_path"
  }
}

run "zero_gpus_is_refused" {
  command = plan
  variables {
    nodes = { cpu-only = { flavor = "m5.large", gpu_count = 0, image = "debian-12" } }
  }
  expect_failures = [var.nodes]
}

run "tiny_root_disk_is_refused" {
  command = plan
  variables {
    nodes = { gpu-a = { flavor = "g5.xlarge", gpu_count = 1, image = "debian-12", root_disk_gb = 8 } }
  }
  expect_failures = [var.nodes]
}

run "ssh_open_to_the_world_is_refused" {
  command = plan
  variables {
    site = merge(var.site, { ssh_allowed_cidrs = ["0.0.0.0/0"] })
  }
  expect_failures = [var.site]
}

run "galaxy_networks_open_to_the_world_are_refused" {
  command = plan
  variables {
    site = merge(var.site, { galaxy_server_cidrs = ["10.0.0.0/24", "0.0.0.0/0"] })
  }
  expect_failures = [var.site]
}

run "host_bits_in_a_cidr_are_refused" {
  command = plan
  variables {
    site = merge(var.site, { ssh_allowed_cidrs = ["203.0.113.10/24"] })
  }
  expect_failures = [var.site]
}

run "no_galaxy_network_is_refused" {
  command = plan
  variables {
    site = merge(var.site, { galaxy_server = { name = "galaxy", address = "galaxy.example.org" } })
  }
  expect_failures = [var.site]
}

run "private_key_instead_of_public_is_refused" {
  command = plan
  variables {
    site = merge(var.site, { ssh_public_key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----" })
  }
  expect_failures = [var.site]
}

run "reversed_interactive_tool_ports_are_refused" {
  command = plan
  variables {
    site = merge(var.site, { interactive_tool_ports = { from = 60999, to = 32768 } })
  }
  expect_failures = [var.site]
}

run "privileged_interactive_tool_ports_are_refused" {
  command = plan
  variables {
    site = merge(var.site, { interactive_tool_ports = { from = 22, to = 60999 } })
  }
  expect_failures = [var.site]
}

run "slurmd_port_inside_the_tool_range_is_refused" {
  command = plan
  variables {
    site = merge(var.site, { slurmd_port = 40000 })
  }
  expect_failures = [var.site]
}

run "nodes_made_on_demand_are_listed_for_slurm_not_deployed" {
  command = plan
  variables {
    nodes = {
      gpu-a = { flavor = "g5.xlarge", gpu_count = 1, image = "debian-12" }
      gpu-b = { flavor = "g5.12xlarge", gpu_count = 4, image = "gxnb-node", on_demand = true, cpus = 48, memory_mb = 176947 }
    }
    instances = { gpu-a = { id = "i-a", address = "10.0.0.11" } }
    on_demand = { driver = "aws", settings = { region = "eu-west-1", launch_template = "lt-0abc", cluster_name = "gxnb" }, network = "10.0.0.0/24" }
  }

  assert {
    condition     = keys(output.inventory.all.children.cloud_job_nodes.hosts) == ["gpu-b"]
    error_message = "the node made on demand is in cloud_job_nodes (site.yml leaves it out), the other is not"
  }
  assert {
    condition     = !contains(keys(output.inventory.all.children.gpu_nodes.hosts["gpu-b"]), "ansible_host") && output.inventory.all.children.gpu_nodes.hosts["gpu-b"].gxnb_gpu_count == 4
    error_message = "a node made on demand has no address yet, and its GPUs"
  }
  assert {
    condition     = output.inventory.all.children.job_nodes.hosts["gpu-b"].gxnb_slurm_cpus == 48 && output.inventory.all.children.job_nodes.hosts["gpu-b"].gxnb_slurm_memory_mb == 176947
    error_message = "a node made on demand carries its cores and memory for Slurm's node line"
  }
  assert {
    condition     = output.inventory.all.children.job_nodes.hosts["gpu-b"].gxnb_internal_network == "10.0.0.0/24" && !contains(keys(output.inventory.all.children.job_nodes.hosts["gpu-b"]), "gxnb_internal_address")
    error_message = "a node made on demand is reached in its network (NFS), its address comes when it registers"
  }
  assert {
    condition     = output.inventory.all.children.job_nodes.hosts["gpu-b"].gxnb_node_driver_node_settings == { instance_type = "g5.12xlarge" }
    error_message = "the driver makes the node with its own instance type"
  }
  assert {
    condition     = alltrue([for h in [output.inventory.all.children.job_nodes.hosts["gpu-a"], output.inventory.all.children.galaxy_servers.hosts["galaxy"]] : h.gxnb_node_driver == "aws" && h.gxnb_node_driver_settings.launch_template == "lt-0abc"])
    error_message = "every host knows the driver and its settings (host variables beat the playbooks' defaults)"
  }
  assert {
    condition     = output.inventory.all.children.job_nodes.hosts["gpu-a"].gxnb_internal_address == "10.0.0.11"
    error_message = "the node terraform made stays as it was"
  }
}

run "without_nodes_made_on_demand_no_driver_is_set" {
  command = plan

  assert {
    condition     = output.inventory.all.children.cloud_job_nodes.hosts == {} && !contains(keys(output.inventory.all.children.job_nodes.hosts["gpu-a"]), "gxnb_node_driver")
    error_message = "no node made on demand: an empty cloud_job_nodes, and the inventory leaves gxnb_node_driver to the site"
  }
}

run "a_node_made_on_demand_without_cores_and_memory_is_refused" {
  command = plan
  variables {
    nodes     = { gpu-a = { flavor = "g5.xlarge", gpu_count = 1, image = "debian-12", on_demand = true } }
    on_demand = { driver = "aws", settings = {}, network = "10.0.0.0/24" }
  }
  expect_failures = [var.nodes]
}

run "a_node_made_on_demand_without_a_driver_is_refused" {
  command = plan
  variables {
    nodes = { gpu-a = { flavor = "g5.xlarge", gpu_count = 1, image = "debian-12", on_demand = true, cpus = 4, memory_mb = 14000 } }
  }
  expect_failures = [var.on_demand]
}

run "an_unknown_driver_is_refused" {
  command = plan
  variables {
    on_demand = { driver = "gcp", settings = {}, network = "10.0.0.0/24" }
  }
  expect_failures = [var.on_demand]
}

run "metrics_ports_inside_the_tool_range_are_refused" {
  command = plan
  variables {
    site = merge(var.site, { metrics_ports = { node = 40000, gpu = 9835 } })
  }
  expect_failures = [var.site]
}
